// TensorDataset: batch collation, scaling and normalisation, label validation, concurrent reads.
#include "mtl/data/tensor_dataset.h"

#include <thread>

#include "mtl/core/error.h"
#include "test_util.h"

using namespace std::string_literals;

namespace {

mtl::DatasetSchema image_schema(int64_t classes) {
  mtl::DatasetSchema s;
  s.inputs.push_back({"image", {1, 2, 2}});
  s.labels.push_back({"digit", mtl::LabelKind::kClass, classes, {}});
  s.labels.push_back({"size", mtl::LabelKind::kReal, 1, {}});
  return s;
}

// 4 images [4,1,2,2] with pixel values 0, 51, 102, 255 patterns.
torch::Tensor images() {
  return torch::tensor({0, 51, 102, 255, 255, 0, 0, 0, 1, 2, 3, 4, 10, 20, 30, 40}, torch::kByte).reshape({4, 1, 2, 2});
}

}  // namespace

TEST(TensorDataset, CollatesScaledImagesAndTargets) {
  mtl::TensorDataset ds(image_schema(3), images(),
                        {{"digit", torch::tensor({0, 2, 1, 2}, torch::kByte)},
                         {"size", torch::tensor({0.5, 1.5, 2.5, 3.5}, torch::kDouble)}});
  EXPECT_EQ(ds.size(), 4);
  mtl::Batch b = ds.batch({1, 0, 1});
  EXPECT_EQ(b.size, 3);
  const torch::Tensor& x = b.inputs.at("image");
  EXPECT_EQ(x.scalar_type(), torch::kFloat);
  EXPECT_EQ(x.sizes(), (std::vector<int64_t>{3, 1, 2, 2}));
  EXPECT_TRUE(torch::allclose(x[1].flatten(), torch::tensor({0.f, 51 / 255.f, 102 / 255.f, 1.f})));
  EXPECT_TRUE(torch::equal(x[0], x[2]));
  EXPECT_EQ(b.targets.at("digit").scalar_type(), torch::kLong);
  EXPECT_TRUE(torch::equal(b.targets.at("digit"), torch::tensor({2, 0, 2}, torch::kLong)));
  EXPECT_EQ(b.targets.at("size").scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::allclose(b.targets.at("size"), torch::tensor({1.5f, 0.5f, 1.5f})));
}

TEST(TensorDataset, NormalisesAfterScaling) {
  mtl::TensorDataset ds(image_schema(3), images(),
                        {{"digit", torch::tensor({0, 2, 1, 2})}, {"size", torch::zeros({4})}},
                        mtl::InputTransform::normalization({0.5}, {0.5}));
  torch::Tensor x = ds.batch({0}).inputs.at("image").flatten();
  EXPECT_TRUE(torch::allclose(x, torch::tensor({-1.f, 51 / 127.5f - 1, 102 / 127.5f - 1, 1.f})));
}

TEST(TensorDataset, NormalisesFeaturesPerColumn) {
  mtl::DatasetSchema s;
  s.inputs.push_back({"features", {2}});
  s.labels.push_back({"y", mtl::LabelKind::kReal, 1, {}});
  mtl::TensorDataset ds(s, torch::tensor({1.0, 10.0, 3.0, 30.0}).reshape({2, 2}), {{"y", torch::zeros({2})}},
                        mtl::InputTransform::normalization({2.0, 20.0}, {1.0, 10.0}));
  torch::Tensor x = ds.batch({0, 1}).inputs.at("features");
  EXPECT_TRUE(torch::allclose(x, torch::tensor({-1.f, -1.f, 1.f, 1.f}).reshape({2, 2})));
  // The stored data are untouched by batching.
  EXPECT_TRUE(torch::allclose(ds.input(), torch::tensor({1.f, 10.f, 3.f, 30.f}).reshape({2, 2})));
}

TEST(TensorDataset, RejectsClassLabelsOutOfRange) {
  EXPECT_MTL_ERROR(mtl::TensorDataset(image_schema(3), images(),
                                      {{"digit", torch::tensor({0, 2, 3, 1})}, {"size", torch::zeros({4})}},
                                      {}, "data/train.gz"),
                   "data/train.gz"s, "label 'digit'"s, "example 2"s, "class 3"s, "[0, 3)"s);
  EXPECT_MTL_ERROR(mtl::TensorDataset(image_schema(3), images(),
                                      {{"digit", torch::tensor({0, -1, 0, 1})}, {"size", torch::zeros({4})}}),
                   "label 'digit'"s, "example 1"s, "class -1"s);
  EXPECT_MTL_ERROR(mtl::TensorDataset(image_schema(3), images(),
                                      {{"digit", torch::tensor({0, 1, 0})}, {"size", torch::zeros({4})}}),
                   "label 'digit'"s, "3 values for 4 examples"s);
}

TEST(TensorDataset, PixelLabelsStayCompactAndArrivePerBatch) {
  mtl::DatasetSchema s;
  s.inputs.push_back({"image", {1, 2, 2}});
  s.labels.push_back({"seg", mtl::LabelKind::kPixelClass, 3, {}, {2, 2}});
  s.labels.push_back({"depth", mtl::LabelKind::kPixelReal, 1, {}, {2, 2}});
  torch::Tensor seg = torch::randint(0, 3, {4, 2, 2}, torch::kLong).to(torch::kByte);
  torch::Tensor depth = torch::tensor({0, 51, 102, 255}, torch::kByte).repeat({4, 1}).view({4, 2, 2});
  mtl::TensorDataset ds(s, images(), {{"seg", seg}, {"depth", depth}});
  EXPECT_EQ(ds.labels().at("seg").scalar_type(), torch::kByte);
  mtl::Batch b = ds.batch({3, 1});
  EXPECT_EQ(b.targets.at("seg").scalar_type(), torch::kLong);
  EXPECT_TRUE(torch::equal(b.targets.at("seg"), seg.index_select(0, torch::tensor({3, 1})).to(torch::kLong)));
  EXPECT_TRUE(torch::allclose(b.targets.at("depth")[0].flatten(), torch::tensor({0.0f, 0.2f, 0.4f, 1.0f})));
  torch::Tensor bad = seg.clone();
  bad[2][1][0] = 3;
  EXPECT_MTL_ERROR(mtl::TensorDataset(s, images(), {{"seg", bad}, {"depth", depth}}, {}, "seg.idx"),
                   "seg.idx"s, "label 'seg'"s, "example 2"s, "class 3"s, "[0, 3)"s);
  EXPECT_MTL_ERROR(mtl::TensorDataset(s, images(), {{"seg", seg.view({4, 4})}, {"depth", depth}}),
                   "label 'seg'"s, "2 x 2 map"s);
}

TEST(TensorDataset, ConcurrentBatchesMatchSerialOnes) {
  torch::manual_seed(1);
  mtl::DatasetSchema s = image_schema(10);
  s.inputs[0].shape = {1, 8, 8};
  const int64_t n = 500;
  mtl::TensorDataset ds(s, torch::randint(0, 256, {n, 1, 8, 8}, torch::kByte),
                        {{"digit", torch::randint(0, 10, {n})}, {"size", torch::randn({n})}},
                        mtl::InputTransform::normalization({0.5}, {0.5}));
  std::vector<std::vector<int64_t>> requests;
  for (int64_t r = 0; r < 40; ++r) {
    std::vector<int64_t> idx;
    for (int64_t j = 0; j < 32; ++j) idx.push_back((r * 37 + j * 11) % n);
    requests.push_back(idx);
  }
  std::vector<mtl::Batch> serial;
  for (const auto& idx : requests) serial.push_back(ds.batch(idx));
  std::vector<mtl::Batch> parallel(requests.size());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (size_t r = t; r < requests.size(); r += 4) parallel[r] = ds.batch(requests[r]);
    });
  for (auto& th : threads) th.join();
  for (size_t r = 0; r < requests.size(); ++r) {
    EXPECT_TRUE(torch::equal(serial[r].inputs.at("image"), parallel[r].inputs.at("image")));
    EXPECT_TRUE(torch::equal(serial[r].targets.at("digit"), parallel[r].targets.at("digit")));
  }
}
