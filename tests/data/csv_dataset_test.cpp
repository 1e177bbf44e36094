// The "csv" dataset source: parsing, class mapping, standardisation against hand-computed numbers, and
// one-line errors for every kind of bad input.
#include "mtl/data/csv_dataset.h"

#include <cmath>

#include "mtl/config/config_node.h"
#include "mtl/core/error.h"
#include "test_util.h"

using namespace std::string_literals;

namespace {

using mtl_test::TempDir;

using Made = mtl_test::MadeSource;

Made make(const std::string& options) { return mtl_test::make_source("csv", options); }

const char* kTrain =
    "x1,x2,species,grade,weight\n"
    "1,10,cat,10,0.5\n"
    "2,10,dog,2,1.5\n"
    "\n"
    "3,40,cat,9,2.5\r\n"
    "4,20,bird,2,3.5\n";
const char* kTest =
    "weight,grade,species,x2,x1\n"   // columns in another order
    "9.0,9,dog,30,5\n";

struct Files {
  TempDir dir{"csv"};
  Files(const std::string& train = kTrain, const std::string& test = kTest) {
    mtl_test::write_file(dir.file("train.csv"), train);
    mtl_test::write_file(dir.file("test.csv"), test);
  }
  std::string yaml(const std::string& extra = "") const {
    return "  train: " + dir.file("train.csv") + "\n  test: " + dir.file("test.csv") +
           "\n  labels:\n    species: {}\n    grade: {column: grade, kind: class}\n"
           "    weight: {kind: real}\n" + extra;
  }
};

}  // namespace

TEST(CsvSource, SchemaClassesAndTargets) {
  Files f;
  Made m = make(f.yaml());
  EXPECT_NO_THROW(m.cfg.check_unused());
  mtl::DatasetSchema s = m.source->schema();
  EXPECT_EQ(s.inputs[0].name, "features");
  EXPECT_EQ(s.inputs[0].shape, (std::vector<int64_t>{2}));  // x1, x2: every non-label column
  ASSERT_EQ(s.labels.size(), 3u);
  EXPECT_EQ(s.labels[0].name, "species");
  EXPECT_EQ(s.labels[0].kind, mtl::LabelKind::kClass);
  EXPECT_EQ(s.labels[0].classes, (std::vector<std::string>{"bird", "cat", "dog"}));  // sorted strings
  EXPECT_EQ(s.labels[1].classes, (std::vector<std::string>{"2", "9", "10"}));        // sorted numbers
  EXPECT_EQ(s.labels[1].size, 3);
  EXPECT_EQ(s.labels[2].kind, mtl::LabelKind::kReal);
  EXPECT_EQ(s.labels[2].size, 1);

  auto train = m.source->open(mtl::Split::kTrain);
  ASSERT_EQ(train->size(), 4);  // the blank line is skipped, \r\n accepted
  mtl::Batch b = train->batch({0, 1, 2, 3});
  EXPECT_TRUE(torch::equal(b.targets.at("species"), torch::tensor({1, 2, 1, 0}, torch::kLong)));
  EXPECT_TRUE(torch::equal(b.targets.at("grade"), torch::tensor({2, 0, 1, 0}, torch::kLong)));
  EXPECT_EQ(b.targets.at("weight").scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::allclose(b.targets.at("weight"), torch::tensor({0.5f, 1.5f, 2.5f, 3.5f})));

  auto test = m.source->open(mtl::Split::kTest);
  mtl::Batch t = test->batch({0});
  EXPECT_EQ(t.targets.at("species").item<int64_t>(), 2);
  EXPECT_EQ(t.targets.at("grade").item<int64_t>(), 1);
  EXPECT_FLOAT_EQ(t.targets.at("weight").item<float>(), 9.0f);
}

TEST(CsvSource, StandardisesWithTrainStatistics) {
  Files f;
  Made m = make(f.yaml());
  auto* csv = dynamic_cast<mtl::CsvSource*>(m.source.get());
  ASSERT_NE(csv, nullptr);
  // x1 = 1,2,3,4: mean 2.5, population std sqrt(1.25). x2 = 10,10,40,20: mean 20, std sqrt(150).
  std::vector<double> mean = csv->feature_mean(), sd = csv->feature_std();
  ASSERT_EQ(mean.size(), 2u);
  EXPECT_DOUBLE_EQ(mean[0], 2.5);
  EXPECT_DOUBLE_EQ(mean[1], 20.0);
  EXPECT_DOUBLE_EQ(sd[0], std::sqrt(1.25));
  EXPECT_DOUBLE_EQ(sd[1], std::sqrt(150.0));
  torch::Tensor x = m.source->open(mtl::Split::kTrain)->batch({0, 2}).inputs.at("features");
  torch::Tensor want = torch::tensor({(1 - 2.5) / std::sqrt(1.25), (10 - 20) / std::sqrt(150.0),
                                      (3 - 2.5) / std::sqrt(1.25), (40 - 20) / std::sqrt(150.0)},
                                     torch::kFloat)
                           .reshape({2, 2});
  EXPECT_TRUE(torch::allclose(x, want)) << x;
  // The test file (columns reordered) uses the train statistics.
  torch::Tensor xt = m.source->open(mtl::Split::kTest)->batch({0}).inputs.at("features");
  EXPECT_TRUE(torch::allclose(
      xt, torch::tensor({(5 - 2.5) / std::sqrt(1.25), (30 - 20) / std::sqrt(150.0)}, torch::kFloat).reshape({1, 2})));
}

TEST(CsvSource, ConstantColumnAndNoStandardisation) {
  Files f("a,b,y\n1,7,u\n3,7,v\n", "a,b,y\n2,7,u\n");
  Made m = make("  train: " + f.dir.file("train.csv") + "\n  test: " + f.dir.file("test.csv") +
                "\n  labels: {y: {}}\n");
  torch::Tensor x = m.source->open(mtl::Split::kTrain)->batch({0, 1}).inputs.at("features");
  EXPECT_TRUE(torch::allclose(x, torch::tensor({-1.f, 0.f, 1.f, 0.f}).reshape({2, 2})));  // b: std 0 -> 1

  Made raw = make("  train: " + f.dir.file("train.csv") + "\n  test: " + f.dir.file("test.csv") +
                  "\n  labels: {y: {}}\n  standardize: false\n  features: [b, a]\n");
  EXPECT_EQ(raw.source->schema().inputs[0].shape, (std::vector<int64_t>{2}));
  torch::Tensor r = raw.source->open(mtl::Split::kTrain)->batch({1}).inputs.at("features");
  EXPECT_TRUE(torch::allclose(r, torch::tensor({7.f, 3.f}).reshape({1, 2})));  // in the listed order
}

TEST(CsvSource, DelimiterAndQuotedFields) {
  Files f("name;v;\"label\"\n\"a;b\";1;\"say \"\"hi\"\"\"\n  c  ; 2 ; x\n", "name;v;label\nq;3;x\n");
  Made m = make("  train: " + f.dir.file("train.csv") + "\n  test: " + f.dir.file("test.csv") +
                "\n  delimiter: \";\"\n  labels: {label: {}}\n  features: [v]\n  standardize: false\n");
  mtl::DatasetSchema s = m.source->schema();
  EXPECT_EQ(s.labels[0].classes, (std::vector<std::string>{"say \"hi\"", "x"}));
  mtl::Batch b = m.source->open(mtl::Split::kTrain)->batch({0, 1});
  EXPECT_TRUE(torch::allclose(b.inputs.at("features"), torch::tensor({1.f, 2.f}).reshape({2, 1})));
  EXPECT_EQ(mtl::split_csv_line("a, \"b,c\" ,d,", ',', "w"), (std::vector<std::string>{"a", "b,c", "d", ""}));
  EXPECT_MTL_ERROR(mtl::split_csv_line("a,\"b", ',', "f.csv:3"), "f.csv:3"s, "unterminated"s);
}

TEST(CsvSource, RejectsBadFiles) {
  TempDir dir("csv_bad");
  const std::string test = dir.file("test.csv");
  mtl_test::write_file(test, "x,y\n1,a\n");
  auto open_with = [&](const std::string& name, const std::string& text, const std::string& extra = "") {
    mtl_test::write_file(dir.file(name), text);
    Made m = make("  train: " + dir.file(name) + "\n  test: " + test + "\n  labels: {y: {}}\n" + extra);
    return m.source->open(mtl::Split::kTrain);
  };
  EXPECT_MTL_ERROR(open_with("empty.csv", ""), dir.file("empty.csv"), "empty CSV file"s);
  EXPECT_MTL_ERROR(open_with("blank.csv", "\n \n"), dir.file("blank.csv"), "empty CSV file"s);
  EXPECT_MTL_ERROR(open_with("header.csv", "x,y\n"), dir.file("header.csv"), "no data rows"s);
  EXPECT_MTL_ERROR(open_with("nolabel.csv", "x,why\n1,a\n"), dir.file("nolabel.csv") + ":1"s, "no column 'y'"s,
                   "label 'y'"s, "columns: x, why"s);
  EXPECT_MTL_ERROR(open_with("nofeat.csv", "x,y\n1,a\n", "  features: [z]\n"), dir.file("nofeat.csv") + ":1"s,
                   "no column 'z'"s, "feature"s);
  EXPECT_MTL_ERROR(open_with("ragged.csv", "x,y\n1,a\n2,b\n3\n"), dir.file("ragged.csv") + ":4"s,
                   "expected 2 fields"s, "got 1"s);
  EXPECT_MTL_ERROR(open_with("nan.csv", "x,y\n1,a\n\n2x,b\n"), dir.file("nan.csv") + ":4"s, "column 'x'"s,
                   "expected a number"s, "'2x'"s);
  EXPECT_MTL_ERROR(open_with("missing.csv", "x,y\n,a\n"), dir.file("missing.csv") + ":2"s, "column 'x'"s);
  EXPECT_MTL_ERROR(open_with("dup.csv", "x,x,y\n1,1,a\n"), dir.file("dup.csv") + ":1"s, "'x' appears twice"s);
  EXPECT_MTL_ERROR(open_with("onlylabel.csv", "y\na\n"), dir.file("onlylabel.csv"), "no feature columns"s);
  EXPECT_MTL_ERROR(open_with("noclass.csv", "x,y\n1,\n"), dir.file("noclass.csv") + ":2"s, "empty class value"s);
  Made m = make("  train: " + dir.file("nothere.csv") + "\n  test: " + test + "\n  labels: {y: {}}\n");
  EXPECT_MTL_ERROR(m.source->schema(), dir.file("nothere.csv"), "cannot open"s);
}

TEST(CsvSource, RealLabelMustBeNumeric) {
  Files f("x,w\n1,2.5\n2,heavy\n", "x,w\n1,1\n");
  Made m = make("  train: " + f.dir.file("train.csv") + "\n  test: " + f.dir.file("test.csv") +
                "\n  labels: {weight: {column: w, kind: real}}\n");
  EXPECT_MTL_ERROR(m.source->schema(), f.dir.file("train.csv") + ":3"s, "column 'w'"s, "label 'weight'"s,
                   "'heavy'"s);
}

TEST(CsvSource, UnknownTestClassNamesFileLineAndValue) {
  Files f(kTrain, "x1,x2,species,grade,weight\n5,30,dog,9,1\n5,30,fish,9,1\n");
  Made m = make(f.yaml());
  EXPECT_NO_THROW(m.source->open(mtl::Split::kTrain));
  EXPECT_MTL_ERROR(m.source->open(mtl::Split::kTest), f.dir.file("test.csv") + ":3"s, "label 'species'"s,
                   "class 'fish'"s, "known classes: bird, cat, dog"s);
}

TEST(CsvSource, RejectsBadOptions) {
  Files f;
  EXPECT_MTL_ERROR(make(f.yaml("  delimiter: \"ab\"\n")), "data.delimiter"s, "one character"s);
  EXPECT_MTL_ERROR(make(f.yaml("  features: [x1, weight]\n")), "data.features"s, "'weight' is a label column"s);
  EXPECT_MTL_ERROR(make(f.yaml("  features: [x1, x1]\n")), "data.features"s, "listed twice"s);
  EXPECT_MTL_ERROR(make("  train: a.csv\n  test: b.csv\n  labels: {y: {kind: regression}}\n"),
                   "data.labels.y.kind"s, "'regression'"s, "class, real"s);
  EXPECT_MTL_ERROR(make("  train: a.csv\n  test: b.csv\n"), "data.labels"s, "at least one label"s);
  EXPECT_MTL_ERROR(make("  test: b.csv\n  labels: {y: {}}\n"), "data.train"s, "missing required key 'train'"s);
  EXPECT_MTL_ERROR(make("  train: a.csv\n  test: b.csv\n  labels: {y: {}, z: {column: y}}\n"),
                   "data.labels.z.column"s, "used by two labels"s);
  Made m = make(f.yaml("  standardise: true\n"));
  EXPECT_MTL_ERROR(m.cfg.check_unused(), "standardise"s, "did you mean 'standardize'"s);
}
