// Image preprocessing for pretrained weights (data.normalize / channels / resize): Fashion-MNIST batches repeated to
// three channels, resized and normalised with ImageNet's statistics equal torchvision's transforms on the same
// images (tests/data/image_transform_reference.py); the schema says the transformed shape; bad keys are one-line
// errors.
#include "mtl/data/image_transform.h"

#include <torch/torch.h>

#include "mtl/config/config_node.h"
#include "mtl/core/error.h"
#include "mtl/data/idx.h"
#include "mtl/data/multi_fashion.h"
#include "mtl/io/safetensors.h"
#include "test_util.h"

namespace {

using Made = mtl_test::MadeSource;
using namespace std::string_literals;

const char* kPython = "/usr/bin/python3";

Made make(const std::string& type, const std::string& options) { return mtl_test::make_source(type, options); }

std::string join_numbers(const std::vector<double>& v) {
  std::string s;
  for (double x : v) s += (s.empty() ? "" : ",") + std::to_string(x);
  return s;
}

// torchvision's result for the stored images of `ids` (uint8 [N, 1, h, w]).
at::Tensor torchvision_reference(const at::Tensor& images, int64_t h, int64_t w, const std::vector<double>& mean,
                                 const std::vector<double>& std) {
  mtl_test::TempDir dir("image_transform");
  const std::string in = dir.file("in.safetensors"), out = dir.file("out.safetensors");
  mtl::write_safetensors(in, {{"images", images.contiguous()}});
  mtl_test::ShellRun r = mtl_test::run_shell(
      std::string(kPython) + " " + mtl_test::source_path("tests/data/image_transform_reference.py") + " " + in +
      " " + out + " " + std::to_string(h) + " " + std::to_string(w) + " " + join_numbers(mean) + " " +
      join_numbers(std));
  EXPECT_EQ(r.code, 0) << r.out;
  if (r.code != 0) return {};
  return mtl::read_safetensors(out).tensors.at(0).second;
}

}  // namespace

TEST(ImageTransform, RepeatResizeAndImageNetNormalisationMatchTorchvision) {
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  if (mtl_test::run_shell(std::string(kPython) + " -c 'import torchvision, numpy'").code != 0)
    GTEST_SKIP() << kPython << " cannot import torchvision (install python3-torchvision)";
  // Up (28 -> 64 x 48) and down (28 -> 20 x 13), each against torchvision on the same stored images.
  for (const auto& [h, w] : std::vector<std::pair<int64_t, int64_t>>{{64, 48}, {20, 13}}) {
    SCOPED_TRACE(std::to_string(h) + "x" + std::to_string(w));
    Made m = make("fashion_mnist", "  train_size: 6\n  normalize: imagenet\n  channels: 3\n  resize: [" +
                                       std::to_string(h) + ", " + std::to_string(w) + "]\n");
    EXPECT_NO_THROW(m.cfg.check_unused());
    EXPECT_EQ(m.source->schema().inputs[0].shape, (std::vector<int64_t>{3, h, w}));
    auto train = m.source->open(mtl::Split::kTrain);
    mtl::Batch b = train->batch({0, 1, 2, 3, 4, 5});
    const at::Tensor got = b.inputs.at("image");
    ASSERT_EQ(got.sizes(), (std::vector<int64_t>{6, 3, h, w}));
    const mtl::FashionMnist raw = mtl::read_fashion_mnist(mtl_test::fashion_mnist_dir(), mtl::Split::kTrain);
    const at::Tensor want =
        torchvision_reference(raw.images.slice(0, 0, 6).unsqueeze(1), h, w, mtl::kImageNetMean, mtl::kImageNetStd);
    ASSERT_TRUE(want.defined());
    ASSERT_EQ(want.sizes(), got.sizes());
    const double err = (got - want).abs().max().item<double>();
    EXPECT_LT(err, 1e-5) << "max |difference| " << err;
    // The three channels hold the same image, normalised with each channel's own statistics.
    EXPECT_GT((got[0][0] - got[0][1]).abs().max().item<double>(), 0.01);
  }
}

TEST(ImageTransform, NormalizeTakesMeanAndStdPerChannelOrOne) {
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  Made plain = make("fashion_mnist", "  train_size: 4\n  normalize: false\n");
  Made own = make("fashion_mnist", "  train_size: 4\n  normalize: {mean: [0.25], std: [2.0]}\n");
  Made half = make("fashion_mnist", "  train_size: 4\n");  // the default: (x - 0.5) / 0.5
  const at::Tensor x = plain.source->open(mtl::Split::kTrain)->batch({0, 3}).inputs.at("image");
  EXPECT_TRUE(torch::allclose(own.source->open(mtl::Split::kTrain)->batch({0, 3}).inputs.at("image"),
                              (x - 0.25) / 2.0));
  EXPECT_TRUE(torch::allclose(half.source->open(mtl::Split::kTrain)->batch({0, 3}).inputs.at("image"),
                              (x - 0.5) / 0.5));
  EXPECT_NO_THROW(own.cfg.check_unused());
  // The resolved config records normalize's default; channels and resize only when given (so that baselines
  // recorded before they existed still match).
  const std::string resolved = half.cfg.resolved_yaml();
  EXPECT_NE(resolved.find("normalize: true"), std::string::npos) << resolved;
  EXPECT_EQ(resolved.find("channels"), std::string::npos) << resolved;
  EXPECT_EQ(resolved.find("resize"), std::string::npos) << resolved;
  const std::string given = make("fashion_mnist", "  channels: 3\n  resize: 32\n").cfg.resolved_yaml();
  EXPECT_NE(given.find("channels: 3"), std::string::npos) << given;
  EXPECT_NE(given.find("resize: 32"), std::string::npos) << given;
}

TEST(ImageTransform, IdxImagesAreTransformedAndTheTestFileCheckedAsStored) {
  mtl_test::TempDir dir("image_transform_idx");
  torch::manual_seed(0);
  for (const char* split : {"train", "test"}) {
    mtl::write_idx(dir.file(std::string(split) + "-images.idx"), torch::randint(0, 256, {5, 9, 7}, torch::kByte));
    mtl::write_idx(dir.file(std::string(split) + "-labels.idx"), torch::randint(0, 3, {5}, torch::kByte));
  }
  auto files = [&](const char* split) {
    return "{images: " + dir.file(std::string(split) + "-images.idx") +
           ", labels: {c: " + dir.file(std::string(split) + "-labels.idx") + "}}";
  };
  Made m = make("idx", "  train: " + files("train") + "\n  test: " + files("test") +
                           "\n  channels: 3\n  resize: 12\n  normalize: {mean: [0.1, 0.2, 0.3], std: [1, 2, 4]}\n");
  EXPECT_EQ(m.source->schema().inputs[0].shape, (std::vector<int64_t>{3, 12, 12}));
  auto test = m.source->open(mtl::Split::kTest);  // stored 9 x 7 like the train file: accepted
  at::Tensor x = test->batch({0, 4}).inputs.at("image");
  EXPECT_EQ(x.sizes(), (std::vector<int64_t>{2, 3, 12, 12}));
  // Channel c is the same resized image, normalised with (mean[c], std[c]).
  EXPECT_TRUE(torch::allclose(x[1][2] * 4 + 0.3, x[1][0] * 1 + 0.1, 1e-5, 1e-5));
}

TEST(ImageTransform, BadKeysAreOneLineErrorsNamingTheKey) {
  EXPECT_MTL_ERROR(make("multi_fashion", "  normalize: imagenet\n"), "data.normalize"s,
                   "one per channel (1), got 3"s, "set channels: 3"s);
  EXPECT_MTL_ERROR(make("multi_fashion", "  normalize: {mean: [0.5, 0.5]}\n"), "data.normalize.std"s,
                   "missing required key 'std'"s);
  EXPECT_MTL_ERROR(make("multi_fashion", "  normalize: {mean: [0.5], std: [0.5, 1]}\n"), "data.normalize.std"s,
                   "as many values as mean (1)"s);
  EXPECT_MTL_ERROR(make("multi_fashion", "  normalize: {mean: [0.5], std: [0]}\n"), "data.normalize.std"s,
                   "positive"s);
  EXPECT_MTL_ERROR(make("multi_fashion", "  normalize: imagenet\n  channels: 2\n"), "data.normalize"s,
                   "one per channel (2), got 3"s);
  EXPECT_MTL_ERROR(make("multi_fashion", "  channels: -1\n"), "data.channels"s, "channel count"s);
  EXPECT_MTL_ERROR(make("multi_fashion", "  resize: [1, 2, 3]\n"), "data.resize"s, "[height, width]"s);
  EXPECT_MTL_ERROR(make("multi_fashion", "  resize: big\n"), "data.resize"s, "[height, width]"s);
  EXPECT_MTL_ERROR(make("multi_fashion", "  resize: [0, 32]\n"), "data.resize"s, "both sizes >= 1"s);
  EXPECT_MTL_ERROR(make("multi_fashion", "  resize: 64\n  dense: true\n"), "data.resize"s, "dense: true"s);
  Made typo = make("multi_fashion", "  chanels: 3\n");
  EXPECT_MTL_ERROR(typo.cfg.check_unused(), "chanels"s, "did you mean 'channels'"s);
}
