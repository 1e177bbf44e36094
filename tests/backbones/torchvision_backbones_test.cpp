// mtl's torchvision-compatible backbones against torchvision itself (tests/backbones/torchvision_reference.py):
// the same random weights, loaded without any rename rule from torch.save's .pt and from safetensors, give
// torchvision's features (before the classifier, eval mode) to 1e-5.
#include <torch/torch.h>

#include <filesystem>

#include "backbones/torchvision_resnet.h"
#include "backbones/torchvision_vit.h"
#include "mtl/io/safetensors.h"
#include "mtl/io/torch_state_dict.h"
#include "mtl/io/weight_import.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {

const char* kPython = "/usr/bin/python3";

class TorchvisionBackbones : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(kPython) || mtl_test::run_shell(std::string(kPython) + " -c 'import torchvision'").code != 0) {
      skip_ = std::string(kPython) + " cannot import torchvision (install python3-torchvision; tools/setup.sh does)";
      return;
    }
    dir_ = new mtl_test::TempDir("torchvision_backbones");
    mtl_test::ShellRun r = mtl_test::run_shell(std::string(kPython) + " " +
                                               mtl_test::source_path("tests/backbones/torchvision_reference.py") +
                                               " " + dir_->path());
    if (r.code != 0) failure_ = "tests/backbones/torchvision_reference.py failed: " + r.out;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    if (!failure_.empty()) FAIL() << failure_;
  }
  static std::string file(const std::string& name) { return dir_->file(name); }

  static inline std::string skip_, failure_;
  static inline mtl_test::TempDir* dir_ = nullptr;
};

at::Tensor find(const mtl::NamedTensors& ts, const std::string& name) {
  for (const auto& [n, t] : ts)
    if (n == name) return t;
  ADD_FAILURE() << "no tensor " << name;
  return {};
}

// Loads `weights` (torchvision names) into `model` strictly, the classifier (fc.*) aside, and checks the
// features on the reference input.
void expect_features(mtl::BackboneImpl& model, const mtl::NamedTensors& weights, const mtl::NamedTensors& io,
                     const std::string& source) {
  mtl::WeightImportOptions o;
  for (const auto& kv : model.named_children()) o.load.push_back(kv.key());
  for (const auto& kv : model.named_parameters(/*recurse=*/false)) o.load.push_back(kv.key());
  o.ignore = {"fc", "heads"};
  mtl::WeightImportReport r = mtl::import_weights(model, weights, o, source);
  EXPECT_TRUE(r.missing.empty() && r.unexpected.empty() && r.mismatched.empty()) << r.summary();
  model.eval();
  torch::NoGradGuard no_grad;
  at::Tensor got = model.forward({{"image", find(io, "x")}});
  at::Tensor want = find(io, "features");
  ASSERT_EQ(got.sizes(), want.sizes());
  const double err = (got - want).abs().max().item<double>();
  EXPECT_LT(err, 1e-5 * std::max(1.0, want.abs().max().item<double>())) << source << ": max |difference| " << err;
}

void check_case(const std::string& name, const std::string& arch, int64_t channels,
                const std::function<std::string(const std::string&)>& file) {
  mtl::TorchvisionResNetImpl model(mtl::TorchvisionResNetOptions("image", channels, arch));
  const mtl::NamedTensors io = mtl::read_safetensors(file(name + "_io.safetensors")).tensors;
  EXPECT_EQ(model.output_dim(), find(io, "features").size(1));
  expect_features(model, mtl::read_torch_state_dict(file(name + ".pt")), io, name + ".pt");
  mtl::TorchvisionResNetImpl again(mtl::TorchvisionResNetOptions("image", channels, arch));
  expect_features(again, mtl::read_safetensors(file(name + ".safetensors")).tensors, io, name + ".safetensors");
}

}  // namespace

TEST_F(TorchvisionBackbones, ResNet18MatchesTorchvision) { check_case("resnet18", "resnet18", 3, file); }

TEST_F(TorchvisionBackbones, ResNet50MatchesTorchvision) { check_case("resnet50", "resnet50", 3, file); }

TEST_F(TorchvisionBackbones, OneChannelAndAnOddImageSize) { check_case("resnet18_gray", "resnet18", 1, file); }

// model.init.adapt_channels: torchvision's 3-channel weights serve gray images (kernels summed), and 1-channel
// weights serve 3-channel images whose channels are equal (kernels spread); without it, conv1 is a mismatch.
TEST_F(TorchvisionBackbones, AdaptChannelsBetweenGrayAndThreeChannelWeights) {
  auto load = [](mtl::BackboneImpl& model, const mtl::NamedTensors& weights, bool adapt) {
    mtl::WeightImportOptions o;
    o.load = {"conv1", "bn1", "layer1", "layer2", "layer3", "layer4"};
    o.ignore = {"fc"};
    o.adapt_channels = adapt;
    return mtl::import_weights(model, weights, o, "w.pt");
  };
  const mtl::NamedTensors rgb_weights = mtl::read_torch_state_dict(file("resnet18.pt"));
  mtl::TorchvisionResNetImpl rgb(mtl::TorchvisionResNetOptions("image", 3, "resnet18"));
  mtl::TorchvisionResNetImpl gray(mtl::TorchvisionResNetOptions("image", 1, "resnet18"));
  load(rgb, rgb_weights, false);
  EXPECT_MTL_ERROR(load(gray, rgb_weights, false), "conv1.weight: file [64, 3, 7, 7] F32 vs model [64, 1, 7, 7] F32");
  mtl::WeightImportReport r = load(gray, rgb_weights, true);
  ASSERT_EQ(r.converted.size(), 1u);
  EXPECT_EQ(r.converted[0], "conv1.weight: [64, 3, 7, 7] -> [64, 1, 7, 7] (input channels summed)");
  rgb.eval();
  gray.eval();
  torch::NoGradGuard no_grad;
  at::Tensor x = torch::randn({2, 1, 40, 40});
  at::Tensor want = rgb.forward({{"image", x.repeat({1, 3, 1, 1})}});  // rgb == torchvision (tests above)
  EXPECT_LT((gray.forward({{"image", x}}) - want).abs().max().item<double>(), 1e-4 * want.abs().max().item<double>());

  // The reverse: torchvision's 1-channel model's weights in a 3-channel model, on equal channels.
  mtl::TorchvisionResNetImpl spread(mtl::TorchvisionResNetOptions("image", 3, "resnet18"));
  r = load(spread, mtl::read_torch_state_dict(file("resnet18_gray.pt")), true);
  EXPECT_EQ(r.converted.at(0), "conv1.weight: [64, 1, 7, 7] -> [64, 3, 7, 7] (spread over the input channels)");
  spread.eval();
  const mtl::NamedTensors io = mtl::read_safetensors(file("resnet18_gray_io.safetensors")).tensors;
  at::Tensor gray_features = find(io, "features");
  at::Tensor got = spread.forward({{"image", find(io, "x").repeat({1, 3, 1, 1})}});
  EXPECT_LT((got - gray_features).abs().max().item<double>(), 1e-4 * gray_features.abs().max().item<double>());
}

TEST_F(TorchvisionBackbones, ViTMatchesTorchvision) {
  // torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=4, hidden_dim=64,
  // mlp_dim=96), every tensor random.
  auto options = [] {
    return mtl::TorchvisionViTOptions("image", {3, 32, 32}).patch_size(8).layers(2).heads(4).hidden_dim(64).mlp_dim(96);
  };
  const mtl::NamedTensors io = mtl::read_safetensors(file("vit_io.safetensors")).tensors;
  mtl::TorchvisionViTImpl model(options());
  expect_features(model, mtl::read_torch_state_dict(file("vit.pt")), io, "vit.pt");
  mtl::TorchvisionViTImpl again(options());
  expect_features(again, mtl::read_safetensors(file("vit.safetensors")).tensors, io, "vit.safetensors");
}

TEST(TorchvisionResNet, NamesAndStagesAreTorchvisions) {
  mtl::TorchvisionResNetImpl r50(mtl::TorchvisionResNetOptions("image", 3, "resnet50").channels_last(false));
  size_t n = 0;
  for (const auto& kv : r50.named_parameters()) n += kv.value().numel();
  EXPECT_EQ(n, 23508032u);  // torchvision resnet50: 25,557,032 parameters, less fc's 2048 x 1000 + 1000
  EXPECT_TRUE(r50.named_parameters().contains("layer4.2.conv3.weight"));
  EXPECT_TRUE(r50.named_parameters().contains("layer2.0.downsample.0.weight"));
  EXPECT_TRUE(r50.named_buffers().contains("layer3.5.bn3.running_var"));
  // The staged forward is the forward.
  torch::NoGradGuard no_grad;
  r50.eval();
  at::Tensor x = torch::randn({2, 3, 40, 48});
  at::Tensor y;
  for (int64_t i = 0; i < r50.num_stages(); ++i) y = r50.stage(i, {{"image", x}}, y);
  EXPECT_TRUE(torch::allclose(y, r50.forward({{"image", x}})));
  EXPECT_EQ(r50.block_names().size(), 5u);

  mtl::TorchvisionResNetImpl wide(mtl::TorchvisionResNetOptions("image", 3, "wide_resnet50_2"));
  n = 0;
  for (const auto& kv : wide.named_parameters()) n += kv.value().numel();
  EXPECT_EQ(n, 66834240u);  // torchvision wide_resnet50_2: 68,883,240, less fc's 2048 x 1000 + 1000

  EXPECT_MTL_ERROR(mtl::TorchvisionResNetImpl(mtl::TorchvisionResNetOptions("image", 3, "resnet19")),
                   "TorchvisionResNetOptions.arch", "resnet18, resnet34");
}

TEST(TorchvisionViT, NamesSizesAndStagesAreTorchvisions) {
  // vit_b_16 at 224 x 224: torchvision's 86,567,656 parameters less heads.head's 768 x 1000 + 1000.
  mtl::TorchvisionViTImpl b16(mtl::TorchvisionViTOptions("image", {3, 224, 224}));
  size_t n = 0;
  for (const auto& kv : b16.named_parameters()) n += kv.value().numel();
  EXPECT_EQ(n, 85798656u);
  for (const char* name : {"conv_proj.weight", "class_token", "encoder.pos_embedding",
                           "encoder.layers.encoder_layer_11.self_attention.in_proj_weight",
                           "encoder.layers.encoder_layer_0.self_attention.out_proj.bias",
                           "encoder.layers.encoder_layer_3.mlp.3.weight", "encoder.ln.bias"})
    EXPECT_TRUE(b16.named_parameters().contains(name)) << name;

  // Another image shape and one channel; the staged forward is the forward; fresh weights are drawn from the
  // generator alone.
  mtl::TorchvisionViTImpl small(
      mtl::TorchvisionViTOptions("image", {1, 16, 24}).patch_size(8).layers(2).heads(2).hidden_dim(8).mlp_dim(16));
  at::Generator g1 = at::make_generator<at::CPUGeneratorImpl>(7), g2 = at::make_generator<at::CPUGeneratorImpl>(7);
  small.reset_parameters(g1);
  EXPECT_EQ(small.named_parameters()["encoder.pos_embedding"].sizes(), (std::vector<int64_t>{1, 7, 8}));
  at::Tensor x = torch::randn({3, 1, 16, 24});
  torch::NoGradGuard no_grad;
  small.eval();
  at::Tensor y;
  for (int64_t i = 0; i < small.num_stages(); ++i) y = small.stage(i, {{"image", x}}, y);
  EXPECT_TRUE(torch::allclose(y, small.forward({{"image", x}})));
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{3, 8}));
  mtl::TorchvisionViTImpl twin(
      mtl::TorchvisionViTOptions("image", {1, 16, 24}).patch_size(8).layers(2).heads(2).hidden_dim(8).mlp_dim(16));
  twin.reset_parameters(g2);
  twin.eval();
  EXPECT_TRUE(torch::equal(y, twin.forward({{"image", x}})));

  EXPECT_MTL_ERROR(mtl::TorchvisionViTImpl(mtl::TorchvisionViTOptions("image", {3, 30, 32}).patch_size(8)),
                   "TorchvisionViTOptions.patch_size", "divisor of the image's height and width (30 x 32)");
  EXPECT_MTL_ERROR(mtl::TorchvisionViTImpl(mtl::TorchvisionViTOptions("image", {3, 32, 32}).patch_size(8).heads(5)),
                   "TorchvisionViTOptions.heads", "divisor of hidden_dim (768)");
}
