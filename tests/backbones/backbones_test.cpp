// Built-in backbones: output shapes, parameter counts, and option errors.
#include <torch/torch.h>

#include "backbones/backbone.h"
#include "mtl/config/config_node.h"
#include "test_util.h"

namespace {
mtl::DatasetSchema image_schema(int64_t c, int64_t h, int64_t w) {
  mtl::DatasetSchema s;
  s.inputs.push_back({"image", {c, h, w}});
  return s;
}
constexpr auto make = mtl_test::make_backbone;
int64_t count(const mtl::Backbone& b) {
  int64_t n = 0;
  for (const auto& p : b->parameters()) n += p.numel();
  return n;
}
}  // namespace

TEST(Backbone, LeNetIsTheMultiLeNetTrunk) {
  auto b = make("lenet", image_schema(1, 36, 36));
  EXPECT_EQ(b->output_dim(), 50);
  // conv1 10*1*9*9+10 = 820, conv2 20*10*5*5+20 = 5020, fc 20*5*5*50+50 = 25050
  EXPECT_EQ(count(b), 820 + 5020 + 25050);
  at::Tensor y = b->forward({{"image", torch::rand({3, 1, 36, 36})}});
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{3, 50}));
  EXPECT_GE(y.min().item<float>(), 0.0f);  // ends in ReLU
}

TEST(Backbone, LeNetAdaptsToOtherImageSizes) {
  auto b = make("{type: lenet, out_features: 20}", image_schema(3, 28, 28));
  at::Tensor y = b->forward({{"image", torch::rand({2, 3, 28, 28})}});
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 20}));
}

TEST(Backbone, MlpFlattensItsInput) {
  auto b = make("{type: mlp, hidden: [8, 6]}", image_schema(1, 4, 5));
  // 20*8+8 + 8*6+6 = 168 + 54
  EXPECT_EQ(count(b), 168 + 54);
  EXPECT_EQ(b->forward({{"image", torch::rand({7, 1, 4, 5})}}).sizes(), (std::vector<int64_t>{7, 6}));
}

TEST(Backbone, ResNetStagesAndPooling) {
  auto b = make("{type: resnet, channels: [4, 8], blocks: 2}", image_schema(1, 12, 12));
  EXPECT_EQ(b->output_dim(), 8);
  at::Tensor y = b->forward({{"image", torch::rand({2, 1, 12, 12})}});
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 8}));
  // stem + 2 stages x 2 blocks
  EXPECT_EQ(b->block_names().size(), 5u);
  auto nobn = make("{type: resnet, channels: [4], norm: none}", image_schema(1, 8, 8));
  EXPECT_EQ(nobn->buffers().size(), 0u);
}

// Channels-last float with two OpenMP threads against the contiguous float64 model with the same weights.
// Odd batch and image sizes; the strided projection shortcut is where LibTorch 1.13's oneDNN 2.6 corrupted
// the heap (strided 1x1 convolution, channels-last, more than one thread) before resnet sub-sampled first.
TEST(Backbone, ResNetChannelsLastMatchesContiguousWithTwoThreads) {
  const int saved = at::get_num_threads();
  at::set_num_threads(2);
  for (int64_t batch : {11, 3}) {
    auto fast = make("{type: resnet, channels: [4, 8, 16], norm: none}", image_schema(1, 35, 35));
    auto ref = make("{type: resnet, channels: [4, 8, 16], norm: none, memory_format: contiguous}",
                    image_schema(1, 35, 35));
    ref->to(at::kDouble);
    {
      torch::NoGradGuard no_grad;
      auto fp = fast->named_parameters();
      for (auto& kv : ref->named_parameters()) kv.value().copy_(fp[kv.key()]);
    }
    torch::manual_seed(batch);
    at::Tensor x = torch::randn({batch, 1, 35, 35});
    at::Tensor w = torch::randn({batch, 16});
    (fast->forward({{"image", x}}) * w).sum().backward();
    (ref->forward({{"image", x.to(at::kDouble)}}) * w.to(at::kDouble)).sum().backward();
    auto rp = ref->named_parameters();
    for (auto& kv : fast->named_parameters()) {
      at::Tensor want = rp[kv.key()].grad();
      double err = (kv.value().grad().to(at::kDouble) - want).norm().item<double>();
      EXPECT_LE(err, 1e-4 * std::max(1e-6, want.norm().item<double>())) << kv.key() << " batch " << batch;
    }
  }
  at::set_num_threads(saved);
}

TEST(Backbone, InputSelection) {
  mtl::DatasetSchema two;
  two.inputs.push_back({"image", {1, 36, 36}});
  two.inputs.push_back({"features", {5}});
  EXPECT_MTL_ERROR(make("mlp", two), "c.yaml", "several inputs", "image, features");
  EXPECT_EQ(make("{type: mlp, input: features, hidden: [3]}", two)->output_dim(), 3);
  EXPECT_MTL_ERROR(make("{type: mlp, input: imag}", two), "c.yaml:1:", "did you mean 'image'");
  mtl::DatasetSchema flat;
  flat.inputs.push_back({"features", {5}});
  EXPECT_MTL_ERROR(make("lenet", flat), "lenet needs an image input");
}
