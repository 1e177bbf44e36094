// The "text" and "conll" dataset sources: JSONL/CSV/TSV parsing to identical batches, the <cls>/padding
// layout, lengths, truncation, class lists (sorted, fixed, multi-label), labels.json artefacts keeping class
// indices, CoNLL word-piece alignment, and a one-line file:line error for each kind of bad input.
#include "mtl/data/text/conll_dataset.h"
#include "mtl/data/text/text_dataset.h"

#include <atomic>
#include <thread>

#include "mtl/config/config_node.h"
#include "mtl/core/batch.h"
#include "mtl/core/error.h"
#include "mtl/data/text/tokenizer.h"
#include "mtl/data/text/word_tokenizer.h"
#include "test_util.h"

using namespace std::string_literals;
using mtl_test::TempDir;

namespace {

using Made = mtl_test::MadeSource;

constexpr auto make = mtl_test::make_source;  // the registered factory, as a run uses it

// A word tokenizer trained on the source's training texts (what the assembler (mtl::assemble) does).
std::shared_ptr<const mtl::Tokenizer> train_word_tokenizer(const mtl::DatasetSource& s) {
  return mtl::make_tokenizer(mtl::TokenizerOptions{},
                             [&](const std::function<void(const std::string&)>& visit) { s.for_each_training_text(visit); });
}

// One piece per byte (id 3 + byte), so a word of n letters has n pieces; "_" encodes to nothing.
class ByteTokenizer : public mtl::Tokenizer {
 public:
  std::string type() const override { return "bytes"; }
  std::vector<int64_t> encode(const std::string& text) const override {
    std::vector<int64_t> ids;
    for (unsigned char c : text)
      if (c != '_' && c != ' ') ids.push_back(3 + c);
    return ids;
  }
  std::string decode(const std::vector<int64_t>&) const override { return ""; }
  std::string piece(int64_t id) const override { return std::string(1, static_cast<char>(id - 3)); }
  int64_t vocab_size() const override { return 3 + 256; }
  void save(const std::string&) const override {}
};

const char* kJsonl =
    "{\"text\": \"The union is strong\", \"party\": \"federalist\", \"year\": 1787, \"topics\": [\"union\"]}\n"
    "\n"
    "{\"text\": \"Liberty and the states\", \"party\": \"anti\", \"year\": 1788.5, \"topics\": [\"states\", \"union\"]}\n"
    "{\"text\": \"The union\", \"party\": \"federalist\", \"year\": 1790, \"topics\": []}\n";
const char* kCsv =
    "text,party,year,topics\n"
    "The union is strong,federalist,1787,union\n"
    "\n"
    "\"Liberty and the states\",anti,1788.5,states|union\n"
    "The union,federalist,1790,\n";
const char* kTsv =
    "party\ttext\tyear\ttopics\n"
    "federalist\tThe union is strong\t1787\tunion\n"
    "\n"
    "anti\tLiberty and the states\t1788.5\tstates | union\n"
    "federalist\tThe union\t1790\t\n";

std::string text_yaml(const std::string& train, const std::string& test, const std::string& extra = "") {
  return "  train: " + train + "\n  test: " + test +
         "\n  labels:\n    party: {}\n    year: {kind: real}\n    topics: {kind: multilabel}\n" + extra;
}

// A text source over files with the given content, with its tokenizer set.
struct TextFiles {
  TempDir dir{"text"};
  Made m;
  TextFiles(const std::string& ext, const std::string& train, const std::string& test, const std::string& extra = "") {
    mtl_test::write_file(dir.file("train." + ext), train);
    mtl_test::write_file(dir.file("test." + ext), test);
    m = make("text", text_yaml(dir.file("train." + ext), dir.file("test." + ext), extra));
    m.source->set_tokenizer(train_word_tokenizer(*m.source));
  }
};

bool same_batch(const mtl::Batch& a, const mtl::Batch& b) {
  if (a.size != b.size || a.inputs.size() != b.inputs.size() || a.targets.size() != b.targets.size()) return false;
  for (const auto& [k, v] : a.inputs)
    if (!b.inputs.count(k) || !torch::equal(v, b.inputs.at(k))) return false;
  for (const auto& [k, v] : a.targets)
    if (!b.targets.count(k) || !torch::equal(v, b.targets.at(k))) return false;
  return true;
}

}  // namespace

TEST(TextDataset, JsonlCsvTsvGiveTheSameBatches) {
  TextFiles j("jsonl", kJsonl, kJsonl), c("csv", kCsv, kCsv), t("tsv", kTsv, kTsv);
  EXPECT_NO_THROW(j.m.cfg.check_unused());
  mtl::Batch bj = j.m.source->open(mtl::Split::kTrain)->batch({0, 1, 2});
  mtl::Batch bc = c.m.source->open(mtl::Split::kTrain)->batch({0, 1, 2});
  mtl::Batch bt = t.m.source->open(mtl::Split::kTest)->batch({0, 1, 2});
  EXPECT_TRUE(same_batch(bj, bc));
  EXPECT_TRUE(same_batch(bj, bt));
  EXPECT_EQ(bj.targets.at("party").scalar_type(), torch::kLong);
  EXPECT_TRUE(torch::equal(bj.targets.at("party"), torch::tensor({1, 0, 1}, torch::kLong)));  // anti, federalist
  EXPECT_EQ(bj.targets.at("year").scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::allclose(bj.targets.at("year"), torch::tensor({1787.f, 1788.5f, 1790.f})));
  EXPECT_TRUE(torch::equal(bj.targets.at("topics"), torch::tensor({0.f, 1.f, 1.f, 1.f, 0.f, 0.f}).reshape({3, 2})));
  // A different content really gives a different batch (the comparison can fail).
  TextFiles other("jsonl", std::string(kJsonl).replace(10, 3, "Onion"), kJsonl);
  EXPECT_FALSE(same_batch(bj, other.m.source->open(mtl::Split::kTrain)->batch({0, 1, 2})));
}

TEST(TextDataset, SchemaLayoutPaddingAndLengths) {
  TextFiles f("jsonl", kJsonl, kJsonl);
  auto tok = train_word_tokenizer(*f.m.source);
  mtl::DatasetSchema s = f.m.source->schema();
  ASSERT_EQ(s.inputs.size(), 1u);
  EXPECT_EQ(s.inputs[0].name, "text");
  EXPECT_EQ(s.inputs[0].kind, mtl::InputKind::kTokens);
  EXPECT_EQ(s.inputs[0].shape, (std::vector<int64_t>{257}));
  EXPECT_EQ(s.inputs[0].vocab_size, tok->vocab_size());
  ASSERT_EQ(s.labels.size(), 3u);
  EXPECT_EQ(s.labels[0].classes, (std::vector<std::string>{"anti", "federalist"}));
  EXPECT_EQ(s.labels[1].kind, mtl::LabelKind::kReal);
  EXPECT_EQ(s.labels[2].kind, mtl::LabelKind::kMultiLabel);
  EXPECT_EQ(s.labels[2].size, 2);
  EXPECT_EQ(s.labels[2].classes, (std::vector<std::string>{"states", "union"}));

  auto ds = f.m.source->open(mtl::Split::kTrain);
  EXPECT_EQ(ds->size(), 3);
  EXPECT_EQ(ds->lengths(), (std::vector<int64_t>{5, 5, 3}));
  mtl::Batch b = ds->batch({2, 0});
  torch::Tensor ids = b.inputs.at("text");
  EXPECT_EQ(ids.scalar_type(), torch::kLong);
  ASSERT_EQ(ids.sizes(), (torch::IntArrayRef{2, 5}));
  std::vector<int64_t> row0 = {mtl::kClsTokenId, tok->encode("the")[0], tok->encode("union")[0], mtl::kPadTokenId,
                               mtl::kPadTokenId};
  EXPECT_TRUE(torch::equal(ids[0], torch::tensor(row0, torch::kLong))) << ids;
  std::vector<int64_t> want1 = tok->encode("The union is strong");
  want1.insert(want1.begin(), mtl::kClsTokenId);
  EXPECT_TRUE(torch::equal(ids[1], torch::tensor(want1, torch::kLong))) << ids;
  EXPECT_EQ(ds->batch({2}).inputs.at("text").size(1), 3);  // padded to the longest row of this batch only
}

TEST(TextDataset, TruncatesToMaxLength) {
  TextFiles f("jsonl", kJsonl, kJsonl, "  max_length: 2\n");
  EXPECT_EQ(f.m.source->schema().inputs[0].shape, (std::vector<int64_t>{3}));
  auto ds = f.m.source->open(mtl::Split::kTrain);
  EXPECT_EQ(ds->lengths(), (std::vector<int64_t>{3, 3, 3}));
  torch::Tensor ids = ds->batch({0, 1, 2}).inputs.at("text");
  EXPECT_EQ(ids.size(1), 3);
  EXPECT_EQ(ids[0][0].item<int64_t>(), mtl::kClsTokenId);
}

TEST(TextDataset, ClassesSortedNumericallyOrFixed) {
  const std::string train = "{\"text\": \"a\", \"grade\": 10}\n{\"text\": \"b\", \"grade\": 9}\n{\"text\": \"c\", \"grade\": 2}\n";
  TempDir dir("text_cls");
  mtl_test::write_file(dir.file("train.jsonl"), train);
  Made m = make("text", "  train: " + dir.file("train.jsonl") + "\n  test: " + dir.file("train.jsonl") +
                            "\n  labels: {grade: {}}\n");
  m.source->set_tokenizer(train_word_tokenizer(*m.source));
  EXPECT_EQ(m.source->schema().labels[0].classes, (std::vector<std::string>{"2", "9", "10"}));
  EXPECT_TRUE(torch::equal(m.source->open(mtl::Split::kTrain)->batch({0, 1, 2}).targets.at("grade"),
                           torch::tensor({2, 1, 0}, torch::kLong)));
  Made fixed = make("text", "  train: " + dir.file("train.jsonl") + "\n  test: " + dir.file("train.jsonl") +
                                "\n  labels: {grade: {classes: [10, 9, 2, 1]}}\n");
  fixed.source->set_tokenizer(train_word_tokenizer(*fixed.source));
  mtl::DatasetSchema s = fixed.source->schema();
  EXPECT_EQ(s.labels[0].classes, (std::vector<std::string>{"10", "9", "2", "1"}));
  EXPECT_EQ(s.labels[0].size, 4);
  EXPECT_TRUE(torch::equal(fixed.source->open(mtl::Split::kTrain)->batch({0, 1, 2}).targets.at("grade"),
                           torch::tensor({0, 1, 2}, torch::kLong)));
}

TEST(TextDataset, ArtifactsKeepClassIndices) {
  TextFiles f("jsonl", kJsonl, kJsonl);
  TempDir run("text_art");
  f.m.source->save_artifacts(run.path());
  const std::string json = mtl_test::read_file(run.file("labels.json"));
  EXPECT_NE(json.find("federalist"), std::string::npos);
  EXPECT_EQ(json.find("year"), std::string::npos);  // real labels have no classes

  // A later run (eval/predict) over data whose training split lacks 'anti': the saved classes still rule.
  TempDir later("text_art2");
  const std::string only_fed = "{\"text\": \"the union\", \"party\": \"federalist\", \"year\": 1, \"topics\": [\"union\"]}\n";
  mtl_test::write_file(later.file("train.jsonl"), only_fed);
  mtl_test::write_file(later.file("test.jsonl"), kJsonl);
  Made m = make("text", text_yaml(later.file("train.jsonl"), later.file("test.jsonl")));
  m.source->set_tokenizer(train_word_tokenizer(*f.m.source));
  Made scanned = make("text", text_yaml(later.file("train.jsonl"), later.file("test.jsonl")));
  scanned.source->set_tokenizer(train_word_tokenizer(*f.m.source));
  EXPECT_EQ(scanned.source->schema().labels[0].classes, (std::vector<std::string>{"federalist"}));  // without them
  m.source->load_artifacts(run.path());
  mtl::DatasetSchema s = m.source->schema();
  EXPECT_EQ(s.labels[0].classes, (std::vector<std::string>{"anti", "federalist"}));
  EXPECT_EQ(s.labels[2].classes, (std::vector<std::string>{"states", "union"}));
  EXPECT_TRUE(torch::equal(m.source->open(mtl::Split::kTest)->batch({0, 1}).targets.at("party"),
                           torch::tensor({1, 0}, torch::kLong)));
  TempDir empty("text_art3");
  EXPECT_MTL_ERROR(m.source->load_artifacts(empty.path()), empty.file("labels.json"), "cannot open"s);
  mtl_test::write_file(empty.file("labels.json"), "{\"labels\": {\"party\": {\"classes\": [\"a\", \"b\"]}}}");
  EXPECT_MTL_ERROR(m.source->load_artifacts(empty.path()), empty.file("labels.json"), "label 'topics'"s);
}

TEST(TextDataset, RejectsBadFilesWithFileAndLine) {
  TempDir dir("text_bad");
  const std::string good = dir.file("good.jsonl");
  mtl_test::write_file(good, kJsonl);
  auto open_train = [&](const std::string& name, const std::string& text, const std::string& extra = "") {
    mtl_test::write_file(dir.file(name), text);
    Made m = make("text", text_yaml(dir.file(name), good, extra));
    m.source->set_tokenizer(std::make_shared<ByteTokenizer>());
    return m.source->open(mtl::Split::kTrain);
  };
  const std::string row = "{\"text\": \"x\", \"party\": \"a\", \"year\": 1, \"topics\": []}\n";
  EXPECT_MTL_ERROR(open_train("json.jsonl", row + "{\"text\": \"x\", \"party\": }\n"), dir.file("json.jsonl") + ":2"s,
                   "malformed JSON line"s, "syntax error"s);
  EXPECT_MTL_ERROR(open_train("notext.jsonl", row + row + "{\"txt\": \"x\", \"party\": \"a\", \"year\": 1, \"topics\": []}\n"),
                   dir.file("notext.jsonl") + ":3"s, "no text field 'text'"s);
  EXPECT_MTL_ERROR(open_train("nolabel.jsonl", row + "{\"text\": \"x\", \"year\": 1, \"topics\": []}\n"),
                   dir.file("nolabel.jsonl") + ":2"s, "label 'party'"s, "no field 'party'"s);
  EXPECT_MTL_ERROR(open_train("type.jsonl", row + "{\"text\": \"x\", \"party\": \"a\", \"year\": \"1787\", \"topics\": []}\n"),
                   dir.file("type.jsonl") + ":2"s, "label 'year'"s, "expected a number"s);
  EXPECT_MTL_ERROR(open_train("multi.jsonl", row + "{\"text\": \"x\", \"party\": \"a\", \"year\": 1, \"topics\": \"u\"}\n"),
                   dir.file("multi.jsonl") + ":2"s, "label 'topics'"s, "expected a list"s);
  EXPECT_MTL_ERROR(open_train("empty.jsonl", ""), dir.file("empty.jsonl"), "no examples"s);
  EXPECT_MTL_ERROR(open_train("blank.jsonl", "\n\n"), dir.file("blank.jsonl"), "no examples"s);
  EXPECT_MTL_ERROR(open_train("utf8.jsonl", row + "{\"text\": \"caf\xC3 x\", \"party\": \"a\", \"year\": 1, \"topics\": []}\n"),
                   dir.file("utf8.jsonl") + ":2"s, "invalid UTF-8 at byte 13"s);
  EXPECT_MTL_ERROR(open_train("ragged.csv", "text,party,year,topics\nx,a,1,\nx,a,1\n"), dir.file("ragged.csv") + ":3"s,
                   "expected 4 fields"s, "got 3"s);
  EXPECT_MTL_ERROR(open_train("header.csv", "text,party,year,topic\nx,a,1,\n"), dir.file("header.csv") + ":1"s,
                   "no column 'topics'"s, "did you mean 'topic'"s);
  EXPECT_MTL_ERROR(open_train("onlyheader.tsv", "text\tparty\tyear\ttopics\n"), dir.file("onlyheader.tsv"), "no examples"s);
  EXPECT_MTL_ERROR(open_train("real.tsv", "text\tparty\tyear\ttopics\nx\ta\tsoon\t\n"), dir.file("real.tsv") + ":2"s,
                   "label 'year'"s, "'soon'"s);
  Made missing = make("text", text_yaml(dir.file("nothere.jsonl"), good));
  missing.source->set_tokenizer(std::make_shared<ByteTokenizer>());
  EXPECT_MTL_ERROR(missing.source->open(mtl::Split::kTrain), dir.file("nothere.jsonl"), "cannot open"s);
}

TEST(TextDataset, UnknownTestClassNamesFileLineAndClasses) {
  TempDir dir("text_unknown");
  std::string test;
  for (int i = 0; i < 16; ++i) test += "{\"text\": \"x\", \"party\": \"anti\", \"year\": 1, \"topics\": []}\n";
  test += "{\"text\": \"x\", \"party\": \"Whig\", \"year\": 1, \"topics\": []}\n";
  mtl_test::write_file(dir.file("train.jsonl"), kJsonl);
  mtl_test::write_file(dir.file("test.jsonl"), test);
  Made m = make("text", text_yaml(dir.file("train.jsonl"), dir.file("test.jsonl")));
  m.source->set_tokenizer(std::make_shared<ByteTokenizer>());
  EXPECT_NO_THROW(m.source->open(mtl::Split::kTrain));
  EXPECT_MTL_ERROR(m.source->open(mtl::Split::kTest), dir.file("test.jsonl") + ":17"s,
                   "label 'party' value 'Whig' at line 17 is not one of the 2 training classes (anti, federalist)"s);
  mtl_test::write_file(dir.file("test.jsonl"), "{\"text\": \"x\", \"party\": \"anti\", \"year\": 1, \"topics\": [\"war\"]}\n");
  EXPECT_MTL_ERROR(m.source->open(mtl::Split::kTest), dir.file("test.jsonl") + ":1"s, "label 'topics' value 'war'"s);
}

TEST(TextDataset, RejectsBadOptions) {
  EXPECT_MTL_ERROR(make("text", "  train: a.txt\n  test: b.jsonl\n  labels: {y: {}}\n"), "data.train"s,
                   "cannot tell the data format"s);
  EXPECT_NO_THROW(make("text", "  train: a.txt\n  test: b.txt\n  format: jsonl\n  labels: {y: {}}\n"));
  EXPECT_MTL_ERROR(make("text", "  train: a.jsonl\n  test: b.jsonl\n"), "data.labels"s, "at least one label"s);
  EXPECT_MTL_ERROR(make("text", "  train: a.jsonl\n  test: b.jsonl\n  labels: {y: {kind: tags}}\n"),
                   "data.labels.y.kind"s, "class, real, multilabel"s);
  EXPECT_MTL_ERROR(make("text", "  train: a.jsonl\n  test: b.jsonl\n  max_length: 0\n  labels: {y: {}}\n"),
                   "data.max_length"s);
  EXPECT_MTL_ERROR(make("text", "  train: a.jsonl\n  test: b.jsonl\n  labels: {y: {classes: [a, a]}}\n"),
                   "data.labels.y.classes"s, "listed twice"s);
  Made m = make("text", "  train: a.jsonl\n  test: b.jsonl\n  labels: {y: {}}\n  max_lenght: 3\n");
  EXPECT_MTL_ERROR(m.cfg.check_unused(), "max_lenght"s, "did you mean 'max_length'"s);
}

namespace {

const char* kConllTrain =
    "-DOCSTART- -X- O\n"
    "\n"
    "John NNP B-PER\n"
    "lives VBZ O\n"
    "in IN O\n"
    "Boston NNP B-LOC\n"
    "\n"
    "\n"
    "Mary NNP B-PER\n"
    "_ SYM O\n"
    "Ann NNP I-PER\n";

struct ConllFiles {
  TempDir dir{"conll"};
  Made m;
  ConllFiles(const std::string& train, const std::string& test, const std::string& extra = "") {
    mtl_test::write_file(dir.file("train.conll"), train);
    mtl_test::write_file(dir.file("test.conll"), test);
    m = make("conll", "  train: " + dir.file("train.conll") + "\n  test: " + dir.file("test.conll") +
                          "\n  columns: [token, pos, ner]\n  labels: [ner]\n" + extra);
    m.source->set_tokenizer(std::make_shared<ByteTokenizer>());
  }
};

}  // namespace

TEST(ConllDataset, WordPiecesCarryTheTagOnTheFirstPieceOnly) {
  ConllFiles f(kConllTrain, kConllTrain);
  EXPECT_NO_THROW(f.m.cfg.check_unused());
  mtl::DatasetSchema s = f.m.source->schema();
  ASSERT_EQ(s.labels.size(), 1u);
  EXPECT_EQ(s.labels[0].kind, mtl::LabelKind::kTokenClass);
  EXPECT_EQ(s.labels[0].classes, (std::vector<std::string>{"B-LOC", "B-PER", "I-PER", "O"}));
  EXPECT_EQ(s.inputs[0].vocab_size, 259);

  std::vector<std::string> texts;
  f.m.source->for_each_training_text([&](const std::string& t) { texts.push_back(t); });
  EXPECT_EQ(texts, (std::vector<std::string>{"John lives in Boston", "Mary _ Ann"}));

  auto ds = f.m.source->open(mtl::Split::kTrain);
  ASSERT_EQ(ds->size(), 2);  // -DOCSTART- and repeated blank lines make no sentences
  EXPECT_EQ(ds->lengths(), (std::vector<int64_t>{1 + 4 + 5 + 2 + 6, 1 + 4 + 1 + 3}));
  mtl::Batch b = ds->batch({1, 0});
  torch::Tensor ids = b.inputs.at("text"), tags = b.targets.at("ner");
  ASSERT_EQ(ids.sizes(), tags.sizes());
  ASSERT_EQ(ids.size(1), 18);
  const int64_t I = mtl::kIgnoreIndex;
  auto id = [](char c) { return int64_t{3} + static_cast<unsigned char>(c); };
  // "Mary _ Ann": Mary = 4 pieces (B-PER on the first), "_" encodes to nothing -> one <unk> (O), Ann (I-PER)
  std::vector<int64_t> want_ids = {mtl::kClsTokenId, id('M'), id('a'), id('r'), id('y'), mtl::kUnkTokenId,
                                   id('A'), id('n'), id('n')};
  std::vector<int64_t> want_tags = {I, 1, I, I, I, 3, 2, I, I};
  want_ids.resize(18, mtl::kPadTokenId);
  want_tags.resize(18, I);
  EXPECT_TRUE(torch::equal(ids[0], torch::tensor(want_ids, torch::kLong))) << ids[0];
  EXPECT_TRUE(torch::equal(tags[0], torch::tensor(want_tags, torch::kLong))) << tags[0];
  // "John lives in Boston": tags at positions 1 (John), 5 (lives), 10 (in), 12 (Boston)
  std::vector<int64_t> t1(18, I);
  t1[1] = 1;
  t1[5] = 3;
  t1[10] = 3;
  t1[12] = 0;
  EXPECT_TRUE(torch::equal(tags[1], torch::tensor(t1, torch::kLong))) << tags[1];
  EXPECT_EQ(ids[1][12].item<int64_t>(), id('B'));
}

TEST(ConllDataset, TruncationTabsFixedTagsAndArtifacts) {
  ConllFiles f("a\tX\tO\nbcd\tX\tB-PER\n", "a\tX\tO\n", "  separator: tab\n  max_length: 3\n  classes: {ner: [O, B-PER, I-PER]}\n");
  mtl::DatasetSchema s = f.m.source->schema();
  EXPECT_EQ(s.labels[0].classes, (std::vector<std::string>{"O", "B-PER", "I-PER"}));
  EXPECT_EQ(s.inputs[0].shape, (std::vector<int64_t>{4}));
  mtl::Batch b = f.m.source->open(mtl::Split::kTrain)->batch({0});
  EXPECT_TRUE(torch::equal(b.targets.at("ner"), torch::tensor({mtl::kIgnoreIndex, int64_t{0}, int64_t{1}, mtl::kIgnoreIndex}).reshape({1, 4})));
  TempDir run("conll_art");
  f.m.source->save_artifacts(run.path());
  ConllFiles g("a\tX\tI-PER\n", "a\tX\tO\n", "  separator: tab\n");
  g.m.source->load_artifacts(run.path());
  EXPECT_EQ(g.m.source->schema().labels[0].classes, (std::vector<std::string>{"O", "B-PER", "I-PER"}));
  EXPECT_EQ(g.m.source->open(mtl::Split::kTrain)->batch({0}).targets.at("ner")[0][1].item<int64_t>(), 2);
}

TEST(ConllDataset, RejectsBadFilesWithFileAndLine) {
  ConllFiles f(kConllTrain, "Paris NNP B-LOC\nis VBZ O\n\nRome NNP B-GPE\n");
  EXPECT_NO_THROW(f.m.source->open(mtl::Split::kTrain));
  EXPECT_MTL_ERROR(f.m.source->open(mtl::Split::kTest), f.dir.file("test.conll") + ":4"s,
                   "label 'ner' value 'B-GPE' at line 4 is not one of the 4 training classes"s);
  ConllFiles cols("John NNP B-PER\nlives O\n", kConllTrain);
  EXPECT_MTL_ERROR(cols.m.source->open(mtl::Split::kTrain), cols.dir.file("train.conll") + ":2"s,
                   "expected 3 columns (token, pos, ner), got 2"s);
  ConllFiles empty("-DOCSTART- -X- O\n\n", kConllTrain);
  EXPECT_MTL_ERROR(empty.m.source->open(mtl::Split::kTrain), empty.dir.file("train.conll"), "no sentences"s);
  ConllFiles utf8("John NNP B-PER\nM\xFCller NNP I-PER\n", kConllTrain);
  EXPECT_MTL_ERROR(utf8.m.source->open(mtl::Split::kTrain), utf8.dir.file("train.conll") + ":2"s,
                   "invalid UTF-8 at byte 1"s);
  EXPECT_MTL_ERROR(make("conll", "  train: a\n  test: b\n  columns: [word, ner]\n  labels: [ner]\n"),
                   "data.columns"s, "no token column 'token'"s);
  EXPECT_MTL_ERROR(make("conll", "  train: a\n  test: b\n  columns: [token, ner]\n  labels: [nre]\n"),
                   "data.labels"s, "did you mean 'ner'"s);
  EXPECT_NO_THROW(make("conll", "  train: a\n  test: b\n  columns: [word, ner]\n  token_column: word\n  labels: [ner]\n"));
}

TEST(TextDataset, TrainsWithTheWordTokenizerEndToEnd) {
  // The path the assembler (mtl::assemble) takes: tokenizer from the training texts, save + reload, identical batches.
  TextFiles f("csv", kCsv, kCsv);
  TempDir run("text_e2e");
  auto tok = train_word_tokenizer(*f.m.source);
  tok->save(run.file("tokenizer"));
  f.m.source->set_tokenizer(tok);
  mtl::Batch a = f.m.source->open(mtl::Split::kTest)->batch({0, 1, 2});
  f.m.source->set_tokenizer(mtl::load_tokenizer(run.file("tokenizer")));
  EXPECT_TRUE(same_batch(a, f.m.source->open(mtl::Split::kTest)->batch({0, 1, 2})));
  EXPECT_EQ(tok->decode(std::vector<int64_t>(a.inputs.at("text")[1].data_ptr<int64_t>(),
                                             a.inputs.at("text")[1].data_ptr<int64_t>() + 5)),
            "liberty and the states");
}

TEST(TextDataset, BatchIsThreadSafe) {
  TextFiles f("jsonl", kJsonl, kJsonl);
  auto ds = f.m.source->open(mtl::Split::kTrain);
  const mtl::Batch want = ds->batch({2, 0, 1});
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i)
        if (!same_batch(ds->batch({2, 0, 1}), want)) ++mismatches;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}
