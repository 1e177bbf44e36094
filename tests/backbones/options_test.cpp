// Backbones built from C++ options agree with the same ones built from YAML (parameter names and shapes,
// outputs with the same weights); bad C++ options throw a one-line mtl::Error naming the options struct and
// the key; the parameter names that checkpoints store stay as they were.
#include <torch/torch.h>

#include "backbones/embedding_bag.h"
#include "backbones/lenet.h"
#include "backbones/mlp.h"
#include "backbones/multimodal.h"
#include "backbones/resnet.h"
#include "backbones/rnn.h"
#include "backbones/text_cnn.h"
#include "backbones/transformer.h"
#include "mtl/core/error.h"
#include "test_util.h"

namespace {

using mtl_test::make_backbone;

mtl::DatasetSchema schema_of(std::vector<mtl::InputInfo> inputs) {
  mtl::DatasetSchema s;
  s.inputs = std::move(inputs);
  return s;
}

const mtl::InputInfo kImage{"image", {1, 28, 28}};
const mtl::InputInfo kText{"text", {16}, mtl::InputKind::kTokens, 50};

mtl::TensorMap batch() {
  torch::manual_seed(9);
  at::Tensor ids = torch::randint(mtl::kFirstPieceId, 50, {3, 16});
  ids.select(1, 0).fill_(mtl::kClsTokenId);
  ids[1].slice(0, 9).fill_(mtl::kPadTokenId);
  return {{"image", torch::rand({3, 1, 28, 28})}, {"text", ids}};
}

// Same parameters; with the YAML backbone's weights copied over, the same pooled and per-token features.
void expect_same_backbone(const mtl::Backbone& from_cpp, const mtl::Backbone& from_yaml) {
  mtl_test::expect_same_parameters(*from_cpp, *from_yaml);
  mtl_test::copy_state(*from_yaml, *from_cpp);
  from_cpp->eval();
  from_yaml->eval();
  EXPECT_EQ(from_cpp->output_dim(), from_yaml->output_dim());
  EXPECT_EQ(from_cpp->block_names(), from_yaml->block_names());
  mtl::Features a = from_cpp->encode(batch()), b = from_yaml->encode(batch());
  EXPECT_TRUE(torch::equal(a.pooled, b.pooled));
  EXPECT_EQ(a.tokens.defined(), b.tokens.defined());
  if (a.tokens.defined()) {
    EXPECT_TRUE(torch::equal(a.tokens, b.tokens));
  }
}

}  // namespace

TEST(BackboneOptions, ImageBackbonesFromCppAgreeWithYaml) {
  const auto image = schema_of({kImage});
  expect_same_backbone(std::make_shared<mtl::MlpBackboneImpl>(mtl::MlpBackboneOptions("image", 784).hidden({16, 8})),
                       make_backbone("{type: mlp, hidden: [16, 8]}", image));
  expect_same_backbone(
      std::make_shared<mtl::LeNetBackboneImpl>(mtl::LeNetBackboneOptions("image", {1, 28, 28}).channels({4, 6}).out_features(12)),
      make_backbone("{type: lenet, channels: [4, 6], out_features: 12}", image));
  expect_same_backbone(std::make_shared<mtl::ResNetBackboneImpl>(
                           mtl::ResNetBackboneOptions("image", 1).channels({4, 8}).blocks(2).channels_last(false)),
                       make_backbone("{type: resnet, channels: [4, 8], blocks: 2, memory_format: contiguous}", image));
}

TEST(BackboneOptions, TextBackbonesFromCppAgreeWithYaml) {
  const auto text = schema_of({kText});
  expect_same_backbone(std::make_shared<mtl::EmbeddingBagImpl>(
                           mtl::EmbeddingBagOptions("text", 50).dim(8).mode(mtl::TokenPooling::kMax).projection(5)),
                       make_backbone("{type: embedding_bag, dim: 8, mode: max, projection: 5}", text));
  expect_same_backbone(
      std::make_shared<mtl::TextCnnImpl>(mtl::TextCnnOptions("text", 50).dim(8).kernel_sizes({2, 3}).filters(4)),
      make_backbone("{type: text_cnn, dim: 8, kernel_sizes: [2, 3], filters: 4}", text));
  expect_same_backbone(std::make_shared<mtl::RnnImpl>(
                           mtl::RnnOptions("text", 50).cell("gru").dim(8).hidden(5).pooling(mtl::TokenPooling::kMean)),
                       make_backbone("{type: rnn, cell: gru, dim: 8, hidden: 5, pooling: mean}", text));
  // YAML's max_length defaults to the input's (16) and ffn_dim to 4 * dim: the C++ options say so.
  expect_same_backbone(std::make_shared<mtl::TransformerImpl>(
                           mtl::TransformerOptions("text", 50).dim(8).heads(2).layers(1).ffn_dim(32).max_length(16)),
                       make_backbone("{type: transformer, dim: 8, heads: 2, layers: 1}", text));
}

TEST(BackboneOptions, MultimodalFromCppAgreesWithYaml) {
  const auto both = schema_of({kImage, kText});
  std::vector<mtl::Backbone> stems{
      std::make_shared<mtl::MlpBackboneImpl>(mtl::MlpBackboneOptions("image", 784).hidden({6})),
      std::make_shared<mtl::EmbeddingBagImpl>(mtl::EmbeddingBagOptions("text", 50).dim(4))};
  expect_same_backbone(
      std::make_shared<mtl::MultimodalBackboneImpl>(mtl::MultimodalBackboneOptions().dim(5).fusion("concat").trunk({7}),
                                                    std::vector<std::string>{"image", "text"}, stems),
      make_backbone("{type: multimodal, dim: 5, fusion: concat, trunk: [7], "
                    "stems: {image: {type: mlp, hidden: [6]}, text: {type: embedding_bag, dim: 4}}}",
                    both));
}

// Checkpoints and exported weights written before the MLP layers became an MlpBlock load by these names.
TEST(BackboneOptions, MlpParameterNamesAreThoseOfCheckpoints) {
  mtl::MlpBackboneImpl mlp(mtl::MlpBackboneOptions("x", 4).hidden({3, 2}));
  EXPECT_EQ(mtl_test::parameter_names(mlp),
            (std::vector<std::string>{"layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias"}));
  EXPECT_EQ(mlp.block_names(), (std::vector<std::string>{"layers.0", "layers.2"}));
  std::vector<std::string> trunk;
  for (const auto& name : mtl_test::parameter_names(*make_backbone(
           "{type: multimodal, dim: 5, trunk: [4, 3], stems: {image: {type: mlp, hidden: [2]}}}", schema_of({kImage}))))
    if (name.rfind("trunk.", 0) == 0) trunk.push_back(name);
  EXPECT_EQ(trunk, (std::vector<std::string>{"trunk.0.weight", "trunk.0.bias", "trunk.2.weight", "trunk.2.bias"}));
}

TEST(BackboneOptions, BadCppOptionsThrowNamingTheKey) {
  EXPECT_MTL_ERROR((void)mtl::MlpBackboneImpl(mtl::MlpBackboneOptions("x", 4).hidden({0})), "MlpBackboneOptions.hidden");
  EXPECT_MTL_ERROR((void)mtl::MlpBackboneImpl(mtl::MlpBackboneOptions("", 4)), "MlpBackboneOptions.input");
  EXPECT_MTL_ERROR((void)mtl::LeNetBackboneImpl(mtl::LeNetBackboneOptions("image", {1, 12, 12})),
                   "LeNetBackboneOptions.input", "at least 24x24");
  EXPECT_MTL_ERROR((void)mtl::LeNetBackboneImpl(mtl::LeNetBackboneOptions("image", {1, 28, 28}).channels({4})),
                   "LeNetBackboneOptions.channels", "two positive channel counts");
  EXPECT_MTL_ERROR((void)mtl::ResNetBackboneImpl(mtl::ResNetBackboneOptions("image", 1).norm("layer")),
                   "ResNetBackboneOptions.norm", "expected one of: batch, none");
  EXPECT_MTL_ERROR((void)mtl::ResNetBackboneImpl(mtl::ResNetBackboneOptions("image", 1).channels({})),
                   "ResNetBackboneOptions.channels");
  EXPECT_MTL_ERROR((void)mtl::MultimodalBackboneImpl(mtl::MultimodalBackboneOptions().fusion("mean"), {}, {}),
                   "MultimodalBackboneOptions.fusion");
  EXPECT_MTL_ERROR((void)mtl::MultimodalBackboneImpl(mtl::MultimodalBackboneOptions(), {"image"}, {}),
                   "MultimodalBackboneOptions.stems");
  EXPECT_MTL_ERROR((void)mtl::EmbeddingBagImpl(mtl::EmbeddingBagOptions("text", 50).mode(mtl::TokenPooling::kFirst)),
                   "EmbeddingBagOptions.mode", "first");
  EXPECT_MTL_ERROR((void)mtl::EmbeddingBagImpl(mtl::EmbeddingBagOptions("text", 2)), "EmbeddingBagOptions.vocab_size");
  EXPECT_MTL_ERROR((void)mtl::TextCnnImpl(mtl::TextCnnOptions("text", 50).kernel_sizes({})), "TextCnnOptions.kernel_sizes");
  EXPECT_MTL_ERROR((void)mtl::RnnImpl(mtl::RnnOptions("text", 50).cell("lsmt")), "RnnOptions.cell", "did you mean 'lstm'");
  EXPECT_MTL_ERROR((void)mtl::RnnImpl(mtl::RnnOptions("text", 50).pooling(mtl::TokenPooling::kFirst)), "RnnOptions.pooling");
  EXPECT_MTL_ERROR((void)mtl::TransformerImpl(mtl::TransformerOptions("text", 50).dim(10).heads(4)),
                   "TransformerOptions.heads", "divisor of dim (10)");
  EXPECT_MTL_ERROR((void)mtl::TransformerImpl(mtl::TransformerOptions("text", 50).positions("rotary")),
                   "TransformerOptions.positions");
}
