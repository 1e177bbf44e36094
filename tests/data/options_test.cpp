// Dataset sources built from C++ options agree with the same ones built from YAML (schema, batches);
// bad C++ options throw a one-line mtl::Error naming the options struct and the key.
#include <torch/torch.h>

#include "mtl/core/error.h"
#include "mtl/data/csv_dataset.h"
#include "mtl/data/idx.h"
#include "mtl/data/idx_dataset.h"
#include "mtl/data/multi_fashion.h"
#include "mtl/data/text/conll_dataset.h"
#include "mtl/data/text/text_dataset.h"
#include "mtl/data/text/tokenizer.h"
#include "test_util.h"

namespace {

using mtl_test::TempDir;

void expect_same_schema(const mtl::DatasetSchema& a, const mtl::DatasetSchema& b) {
  ASSERT_EQ(a.inputs.size(), b.inputs.size());
  for (size_t i = 0; i < a.inputs.size(); ++i) {
    EXPECT_EQ(a.inputs[i].name, b.inputs[i].name);
    EXPECT_EQ(a.inputs[i].shape, b.inputs[i].shape);
    EXPECT_EQ(a.inputs[i].kind, b.inputs[i].kind);
    EXPECT_EQ(a.inputs[i].vocab_size, b.inputs[i].vocab_size);
  }
  ASSERT_EQ(a.labels.size(), b.labels.size());
  for (size_t i = 0; i < a.labels.size(); ++i) {
    EXPECT_EQ(a.labels[i].name, b.labels[i].name);
    EXPECT_EQ(a.labels[i].kind, b.labels[i].kind);
    EXPECT_EQ(a.labels[i].size, b.labels[i].size);
    EXPECT_EQ(a.labels[i].classes, b.labels[i].classes);
  }
}

void expect_same_maps(const mtl::TensorMap& a, const mtl::TensorMap& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    EXPECT_TRUE(torch::equal(t, b.at(name))) << name;
  }
}

// Same schema; both splits give the same batches.
void expect_same_source(mtl::DatasetSource& cpp, mtl::DatasetSource& yaml) {
  expect_same_schema(cpp.schema(), yaml.schema());
  for (mtl::Split split : {mtl::Split::kTrain, mtl::Split::kTest}) {
    auto a = cpp.open(split), b = yaml.open(split);
    ASSERT_EQ(a->size(), b->size());
    std::vector<int64_t> all(a->size());
    for (int64_t i = 0; i < a->size(); ++i) all[i] = i;
    mtl::Batch x = a->batch(all), y = b->batch(all);
    expect_same_maps(x.inputs, y.inputs);
    expect_same_maps(x.targets, y.targets);
  }
}

std::shared_ptr<const mtl::Tokenizer> word_tokenizer(const mtl::DatasetSource& s) {
  return mtl::make_tokenizer(mtl::TokenizerOptions{}, [&](const std::function<void(const std::string&)>& visit) {
    s.for_each_training_text(visit);
  });
}

}  // namespace

TEST(DatasetOptions, CsvFromCppAgreesWithYaml) {
  TempDir dir("csv_options");
  mtl_test::write_file(dir.file("train.csv"), "a;b;kind;size\n1;2;x;0.5\n3;5;y;1.5\n4;4;x;2\n");
  mtl_test::write_file(dir.file("test.csv"), "a;b;kind;size\n2;2;y;1\n");
  mtl::CsvOptions o;
  o.train = dir.file("train.csv");
  o.test = dir.file("test.csv");
  o.delimiter = ';';
  o.labels = {{"kind", "kind", mtl::LabelKind::kClass}, {"weight", "size", mtl::LabelKind::kReal}};
  mtl::CsvSource cpp(o);
  auto yaml = mtl_test::make_source("csv", "  train: " + o.train + "\n  test: " + o.test +
                                               "\n  delimiter: ';'\n  labels: {kind: {}, weight: {column: size, kind: real}}\n");
  expect_same_source(cpp, *yaml.source);
}

TEST(DatasetOptions, IdxFromCppAgreesWithYaml) {
  TempDir dir("idx_options");
  torch::manual_seed(1);
  for (const char* split : {"train", "test"}) {
    mtl::write_idx(dir.file(std::string(split) + "-images.gz"), torch::randint(0, 256, {6, 5, 5}, torch::kByte));
    mtl::write_idx(dir.file(std::string(split) + "-digit.gz"), torch::arange(6, torch::kByte).remainder(3));
  }
  mtl::IdxOptions o;
  o.train = {dir.file("train-images.gz"), {{"digit", dir.file("train-digit.gz")}}};
  o.test = {dir.file("test-images.gz"), {{"digit", dir.file("test-digit.gz")}}};
  o.num_classes = {{"digit", 4}};
  mtl::IdxSource cpp(o);
  auto yaml = mtl_test::make_source("idx", "  train: {images: " + o.train.images + ", labels: {digit: " +
                                               o.train.labels[0].second + "}}\n  test: {images: " + o.test.images +
                                               ", labels: {digit: " + o.test.labels[0].second +
                                               "}}\n  num_classes: {digit: 4}\n");
  expect_same_source(cpp, *yaml.source);
}

TEST(DatasetOptions, FashionSourcesFromCppAgreeWithYaml) {
  mtl::MultiFashionOptions mf;
  mf.root = "/nonexistent";
  mf.seed = 3;
  mf.train_size = 100;
  auto mf_yaml = mtl_test::make_source("multi_fashion", "  root: /nonexistent\n  seed: 3\n  train_size: 100\n");
  expect_same_schema(mtl::MultiFashionSource(mf).schema(), mf_yaml.source->schema());
  mtl::FashionMnistOptions fm;
  fm.canvas = 36;
  fm.placement = "center";
  auto fm_yaml = mtl_test::make_source("fashion_mnist", "  canvas: 36\n  placement: center\n");
  expect_same_schema(mtl::FashionMnistSource(fm).schema(), fm_yaml.source->schema());
}

TEST(DatasetOptions, TextSourcesFromCppAgreeWithYaml) {
  TempDir dir("text_options");
  mtl_test::write_file(dir.file("train.jsonl"), "{\"text\": \"a cat sat\", \"topic\": \"pets\"}\n"
                                                "{\"text\": \"stocks fell\", \"topic\": \"money\"}\n");
  mtl_test::write_file(dir.file("test.jsonl"), "{\"text\": \"a cat fell\", \"topic\": \"pets\"}\n");
  mtl::TextOptions t;
  t.train = dir.file("train.jsonl");
  t.test = dir.file("test.jsonl");
  t.max_length = 8;
  t.labels = {{"topic", "topic", mtl::LabelKind::kClass, {}}};
  mtl::TextSource text(t);
  auto text_yaml = mtl_test::make_source("text", "  train: " + t.train + "\n  test: " + t.test +
                                                     "\n  max_length: 8\n  labels: {topic: {}}\n");
  auto tok = word_tokenizer(text);
  text.set_tokenizer(tok);
  text_yaml.source->set_tokenizer(tok);
  expect_same_source(text, *text_yaml.source);

  mtl_test::write_file(dir.file("train.conll"), "Ann B-PER\nran O\n\nBob B-PER\n");
  mtl_test::write_file(dir.file("test.conll"), "Bob B-PER\nran O\n");
  mtl::ConllOptions c;
  c.train = dir.file("train.conll");
  c.test = dir.file("test.conll");
  c.columns = {"token", "ner"};
  c.labels = {"ner"};
  mtl::ConllSource conll(c);
  auto conll_yaml = mtl_test::make_source("conll", "  train: " + c.train + "\n  test: " + c.test +
                                                       "\n  columns: [token, ner]\n  labels: [ner]\n");
  auto conll_tok = word_tokenizer(conll);
  conll.set_tokenizer(conll_tok);
  conll_yaml.source->set_tokenizer(conll_tok);
  expect_same_source(conll, *conll_yaml.source);
}

TEST(DatasetOptions, BadCppOptionsThrowNamingTheKey) {
  mtl::CsvOptions csv;
  csv.train = csv.test = "x.csv";
  EXPECT_MTL_ERROR((void)mtl::CsvSource(csv), "CsvOptions.labels", "at least one label");
  csv.labels = {{"a", "col"}, {"b", "col"}};
  EXPECT_MTL_ERROR((void)mtl::CsvSource(csv), "CsvOptions.labels.b.column", "used by two labels");
  mtl::IdxOptions idx;
  idx.train = {"i.gz", {{"digit", "d.gz"}}};
  idx.test = {"t.gz", {{"parity", "p.gz"}}};
  EXPECT_MTL_ERROR((void)mtl::IdxSource(idx), "IdxOptions.test.labels", "same labels as train");
  mtl::MultiFashionOptions mf;
  mf.max_shift = 5;
  EXPECT_MTL_ERROR((void)mtl::MultiFashionSource(mf), "MultiFashionOptions.max_shift", "[0, 4]");
  mtl::FashionMnistOptions fm;
  fm.canvas = 20;
  EXPECT_MTL_ERROR((void)mtl::FashionMnistSource(fm), "FashionMnistOptions.canvas", "at least 28");
  mtl::TextOptions text;
  text.train = "a.jsonl";
  text.test = "b.jsonl";
  text.labels = {{"party", "party", mtl::LabelKind::kClass, {"whig"}}};
  EXPECT_MTL_ERROR((void)mtl::TextSource(text), "TextOptions.labels.party.classes", "at least two classes");
  text.train = "a.txt";
  EXPECT_MTL_ERROR((void)mtl::TextSource(text), "TextOptions.format", "a.txt", "cannot tell the data format");
  mtl::ConllOptions conll;
  conll.train = conll.test = "a.conll";
  conll.columns = {"token", "ner"};
  conll.labels = {"pos"};
  EXPECT_MTL_ERROR((void)mtl::ConllSource(conll), "ConllOptions.labels", "'pos' is not one of the columns");
}
