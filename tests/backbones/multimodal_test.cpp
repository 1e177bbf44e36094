// The multimodal backbone: one stem per input, fusion by sum or concatenation, a shared trunk; batches with one
// modality (tasks from different datasets) and examples with both (multimodal tasks).
#include <torch/torch.h>

#include "backbones/backbone.h"
#include "mtl/config/config_node.h"
#include "test_util.h"

namespace {

mtl::DatasetSchema image_and_text() {
  mtl::DatasetSchema s;
  s.inputs.push_back({"image", {1, 6, 6}});
  s.inputs.push_back({"text", {12}, mtl::InputKind::kTokens, 40});
  return s;
}

mtl::Backbone make(const std::string& yaml) { return mtl_test::make_backbone(yaml, image_and_text()); }

const char* kStems = "stems: {image: {type: mlp, hidden: [16]}, text: {type: embedding_bag, dim: 8}}";

mtl::TensorMap inputs(bool image, bool text) {
  torch::manual_seed(5);
  mtl::TensorMap m;
  at::Tensor img = torch::randn({3, 1, 6, 6});
  at::Tensor ids = torch::randint(3, 40, {3, 7}, torch::kLong);
  ids.index_put_({torch::indexing::Slice(), 0}, mtl::kClsTokenId);
  if (image) m["image"] = img;
  if (text) m["text"] = ids;
  return m;
}

TEST(Multimodal, SumFusionAddsTheStemsAndRunsOnEitherModality) {
  mtl::Backbone b = make(std::string("{type: multimodal, dim: 10, fusion: sum, trunk: [], ") + kStems + "}");
  EXPECT_EQ(b->output_dim(), 10);
  b->eval();
  at::Tensor img = b->forward(inputs(true, false));
  at::Tensor txt = b->forward(inputs(false, true));
  at::Tensor both = b->forward(inputs(true, true));
  EXPECT_EQ(img.sizes(), (std::vector<int64_t>{3, 10}));
  EXPECT_EQ(txt.sizes(), (std::vector<int64_t>{3, 10}));
  // No trunk: an example with both inputs gets the sum of the two projected stems.
  EXPECT_LT((both - (img + txt)).abs().max().item<double>(), 1e-5);
}

TEST(Multimodal, ConcatFusionFillsAMissingModalityWithZerosAndTrainsBothStems) {
  mtl::Backbone b = make(std::string("{type: multimodal, dim: 4, fusion: concat, trunk: [6], ") + kStems + "}");
  EXPECT_EQ(b->output_dim(), 6);
  at::Tensor both = b->forward(inputs(true, true));
  EXPECT_EQ(both.sizes(), (std::vector<int64_t>{3, 6}));
  at::Tensor img = b->forward(inputs(true, false));
  EXPECT_GT((both - img).abs().max().item<double>(), 1e-6) << "the text must change a multimodal example's features";
  for (auto& p : b->parameters()) p.mutable_grad() = at::Tensor();
  both.pow(2).sum().backward();
  int64_t stems_with_grad = 0;
  for (const auto& kv : b->named_parameters())
    if (kv.key().rfind("stem_", 0) == 0 && kv.value().grad().defined() && kv.value().grad().abs().sum().item<double>() > 0)
      ++stems_with_grad;
  EXPECT_GE(stems_with_grad, 2) << "both stems learn from an example with an image and a text";
}

TEST(Multimodal, ConfigErrorsNameTheStem) {
  auto error_of = [](const std::string& yaml) {
    try {
      make(yaml);
    } catch (const mtl::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  std::string missing = error_of("{type: multimodal, stems: {image: {type: mlp}}}");
  EXPECT_NE(missing.find("input 'text' has no stem"), std::string::npos) << missing;
  std::string unknown = error_of("{type: multimodal, stems: {image: {type: mlp}, txt: {type: embedding_bag}}}");
  EXPECT_NE(unknown.find("no input 'txt'"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("did you mean 'text'"), std::string::npos) << unknown;
}

}  // namespace
