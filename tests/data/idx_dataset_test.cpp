// The "idx" dataset source: user IDX files through the registered factory.
#include "mtl/data/idx_dataset.h"

#include "mtl/config/config_node.h"
#include "mtl/core/error.h"
#include "mtl/data/idx.h"
#include "test_util.h"

using namespace std::string_literals;

namespace {

using mtl_test::TempDir;

using Made = mtl_test::MadeSource;

Made make(const std::string& options) { return mtl_test::make_source("idx", options); }

// Writes a train and a test split: uint8 images [n,8,8], class label "digit" (0..2), real label "size".
struct Files {
  TempDir dir{"idx_source"};
  Files(int64_t train_n = 20, int64_t test_n = 6) {
    torch::manual_seed(3);
    const std::pair<std::string, int64_t> splits[] = {{"train", train_n}, {"test", test_n}};
    for (const auto& [split, n] : splits) {
      mtl::write_idx(file(split, "images"), torch::randint(0, 256, {n, 8, 8}, torch::kByte));
      mtl::write_idx(file(split, "digit"), torch::arange(n, torch::kByte).remainder(3));
      mtl::write_idx(file(split, "size"), torch::arange(n, torch::kFloat).mul(0.5));
    }
  }
  std::string file(const std::string& split, const std::string& what) const {
    return dir.file(split + "-" + what + ".gz");
  }
  std::string split_yaml(const std::string& split, const std::string& images = "") const {
    return "  " + split + ":\n    images: " + (images.empty() ? file(split, "images") : images) +
           "\n    labels: {digit: " + file(split, "digit") + ", size: " + file(split, "size") + "}\n";
  }
  std::string yaml() const { return split_yaml("train") + split_yaml("test"); }
};

}  // namespace

TEST(IdxSource, SchemaAndBatchesFromFiles) {
  Files f;
  Made m = make(f.yaml());
  EXPECT_NO_THROW(m.cfg.check_unused());
  mtl::DatasetSchema s = m.source->schema();
  EXPECT_EQ(s.inputs[0].name, "image");
  EXPECT_EQ(s.inputs[0].shape, (std::vector<int64_t>{1, 8, 8}));
  ASSERT_EQ(s.labels.size(), 2u);
  EXPECT_EQ(s.labels[0].name, "digit");
  EXPECT_EQ(s.labels[0].kind, mtl::LabelKind::kClass);
  EXPECT_EQ(s.labels[0].size, 3);  // largest train label + 1
  EXPECT_EQ(s.labels[1].name, "size");
  EXPECT_EQ(s.labels[1].kind, mtl::LabelKind::kReal);
  EXPECT_EQ(s.labels[1].size, 1);

  auto train = m.source->open(mtl::Split::kTrain);
  auto test = m.source->open(mtl::Split::kTest);
  EXPECT_EQ(train->size(), 20);
  EXPECT_EQ(test->size(), 6);
  mtl::Batch b = train->batch({4, 5});
  EXPECT_EQ(b.inputs.at("image").sizes(), (std::vector<int64_t>{2, 1, 8, 8}));
  EXPECT_TRUE(torch::equal(b.targets.at("digit"), torch::tensor({1, 2}, torch::kLong)));
  EXPECT_TRUE(torch::allclose(b.targets.at("size"), torch::tensor({2.0f, 2.5f})));
  // normalize defaults to true: (x/255 - 0.5) / 0.5.
  torch::Tensor raw = mtl::read_idx(f.file("train", "images"))[4].to(torch::kFloat);
  EXPECT_TRUE(torch::allclose(b.inputs.at("image")[0][0], raw.div(255).sub(0.5).div(0.5)));
}

TEST(IdxSource, NumClassesAndChannels) {
  Files f;
  mtl::write_idx(f.file("train", "rgb"), torch::zeros({20, 3, 5, 7}, torch::kByte));
  mtl::write_idx(f.file("test", "rgb"), torch::zeros({6, 3, 5, 7}, torch::kByte));
  Made m = make(f.split_yaml("train", f.file("train", "rgb")) + f.split_yaml("test", f.file("test", "rgb")) +
                "  num_classes: {digit: 10}\n  normalize: false\n");
  mtl::DatasetSchema s = m.source->schema();
  EXPECT_EQ(s.inputs[0].shape, (std::vector<int64_t>{3, 5, 7}));
  EXPECT_EQ(s.labels[0].size, 10);
  EXPECT_EQ(m.source->open(mtl::Split::kTest)->batch({0}).inputs.at("image").sizes(),
            (std::vector<int64_t>{1, 3, 5, 7}));
}

TEST(IdxSource, CountMismatchNamesBothFiles) {
  Files f;
  mtl::write_idx(f.file("train", "digit"), torch::zeros({19}, torch::kByte));
  Made m = make(f.yaml());
  EXPECT_MTL_ERROR(m.source->open(mtl::Split::kTrain), f.file("train", "digit"), f.file("train", "images"),
                   "19 labels"s, "20 images"s);
}

TEST(IdxSource, TestLabelOutsideTrainClassesIsNamed) {
  Files f;
  mtl::write_idx(f.file("test", "digit"), torch::tensor({0, 1, 2, 7, 0, 1}, torch::kByte));
  Made m = make(f.yaml());
  EXPECT_NO_THROW(m.source->open(mtl::Split::kTrain));
  EXPECT_MTL_ERROR(m.source->open(mtl::Split::kTest), f.file("test", "digit"), "example 3"s, "class 7"s, "[0, 3)"s,
                   "num_classes.digit"s);
}

TEST(IdxSource, TestImagesMustLookLikeTrainImages) {
  Files f;
  mtl::write_idx(f.file("test", "images"), torch::zeros({6, 9, 9}, torch::kByte));
  Made m = make(f.yaml());
  EXPECT_MTL_ERROR(m.source->open(mtl::Split::kTest), f.file("test", "images"), "[1, 8, 8]"s, "[6, 9, 9]"s);
}

TEST(IdxSource, RejectsBadFilesAndOptions) {
  Files f;
  {
    Made m = make(f.split_yaml("train", f.dir.file("nope.gz")) + f.split_yaml("test"));
    EXPECT_MTL_ERROR(m.source->schema(), f.dir.file("nope.gz"), "cannot open"s);
  }
  {
    mtl::write_idx(f.dir.file("flat.gz"), torch::zeros({20, 64}, torch::kByte));
    Made m = make(f.split_yaml("train", f.dir.file("flat.gz")) + f.split_yaml("test"));
    EXPECT_MTL_ERROR(m.source->schema(), f.dir.file("flat.gz"), "[N, H, W] or [N, C, H, W]"s);
  }
  EXPECT_MTL_ERROR(make(f.split_yaml("train")), "data.test"s, "missing required key 'test'"s);
  EXPECT_MTL_ERROR(make(f.yaml() + "  num_classes: {digt: 3}\n"), "data.num_classes.digt"s,
                   "did you mean 'digit'"s);
  EXPECT_MTL_ERROR(make(f.yaml() + "  num_classes: {digit: 0}\n"), "data.num_classes.digit"s, "positive"s);
  EXPECT_MTL_ERROR(make(f.split_yaml("train") + "  test:\n    images: " + f.file("test", "images") +
                        "\n    labels: {digit: " + f.file("test", "digit") + "}\n"),
                   "data.test.labels"s, "same labels as train"s);
  Made m = make(f.yaml() + "  num_classes: {size: 3}\n");
  EXPECT_MTL_ERROR(m.source->schema(), f.file("train", "size"), "holds real values"s);
}
