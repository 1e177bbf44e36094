// Heads and losses built from C++ options agree with the same ones built from YAML (parameter names and
// shapes, outputs with the same weights, loss values); bad C++ options throw a one-line mtl::Error naming
// the options struct and the key.
#include <torch/torch.h>

#include "heads/classification.h"
#include "heads/mlp_block.h"
#include "heads/multilabel.h"
#include "heads/regression.h"
#include "heads/token_classification.h"
#include "mtl/core/error.h"
#include "test_util.h"

namespace {

using mtl_test::make_head;
using mtl_test::make_loss;

// Same parameters; with the YAML head's weights copied over, the same outputs and predictions.
void expect_same_head(const mtl::Head& from_cpp, const mtl::Head& from_yaml, const at::Tensor& features) {
  mtl_test::expect_same_parameters(*from_cpp, *from_yaml);
  mtl_test::copy_state(*from_yaml, *from_cpp);
  from_cpp->eval();
  from_yaml->eval();
  at::Tensor a = from_cpp->forward(features), b = from_yaml->forward(features);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_TRUE(torch::equal(from_cpp->predict(a), from_yaml->predict(b)));
  EXPECT_EQ(from_cpp->token_level(), from_yaml->token_level());
}

}  // namespace

TEST(HeadOptions, CppOptionsAgreeWithYaml) {
  torch::manual_seed(2);
  const at::Tensor x = torch::randn({5, 6});
  expect_same_head(std::make_shared<mtl::ClassificationHeadImpl>(
                       mtl::ClassificationHeadOptions(6, 4).hidden({8, 3}).activation("gelu").dropout(0.2)),
                   make_head("{type: classification, hidden: [8, 3], activation: gelu, dropout: 0.2}", 6,
                             mtl_test::class_label(4)),
                   x);
  expect_same_head(std::make_shared<mtl::MultiLabelHeadImpl>(mtl::MultiLabelHeadOptions(6, 3).hidden({5})),
                   make_head("{type: multilabel, hidden: [5]}", 6, mtl_test::multi_label(3)), x);
  expect_same_head(std::make_shared<mtl::RegressionHeadImpl>(mtl::RegressionHeadOptions(6, 1).activation("tanh")),
                   make_head("{type: regression, activation: tanh}", 6, mtl_test::real_label(1)), x);
  expect_same_head(std::make_shared<mtl::RegressionHeadImpl>(mtl::RegressionHeadOptions(6, 2)),
                   make_head("regression", 6, mtl_test::real_label(2)), x);
  expect_same_head(std::make_shared<mtl::TokenClassificationHeadImpl>(mtl::TokenClassificationHeadOptions(6, 3)),
                   make_head("token_classification", 6, mtl_test::tag_label({"O", "B-PER", "I-PER"})),
                   torch::randn({2, 4, 6}));
}

TEST(HeadOptions, FromConfigReadsEveryOption) {
  mtl::Config cfg = mtl::Config::from_string("x: {hidden: [7], dropout: 0.25, activation: tanh}");
  mtl::MlpHeadOptions o = mtl::MlpHeadOptions::from_config(cfg.root().child("x"), 3, 2);
  EXPECT_EQ(o.in_features(), 3);
  EXPECT_EQ(o.out_features(), 2);
  EXPECT_EQ(o.hidden(), (std::vector<int64_t>{7}));
  EXPECT_EQ(o.dropout(), 0.25);
  EXPECT_EQ(o.activation(), "tanh");
}

TEST(HeadOptions, BadCppOptionsThrowNamingTheKey) {
  using H = mtl::ClassificationHeadImpl;
  EXPECT_MTL_ERROR((void)H(mtl::ClassificationHeadOptions(4, 3).hidden({8, 0})), "MlpHeadOptions.hidden",
                   "positive layer widths, got 0");
  EXPECT_MTL_ERROR((void)H(mtl::ClassificationHeadOptions(4, 3).dropout(1.0)), "MlpHeadOptions.dropout", "[0, 1)");
  EXPECT_MTL_ERROR((void)H(mtl::ClassificationHeadOptions(4, 3).activation("rleu")), "MlpHeadOptions.activation",
                   "did you mean 'relu'");
  EXPECT_MTL_ERROR((void)H(mtl::ClassificationHeadOptions(0, 3)), "MlpHeadOptions.in_features", "positive");
  EXPECT_MTL_ERROR((void)mtl::RegressionHeadImpl(mtl::RegressionHeadOptions(4, 0)), "MlpHeadOptions.out_features");
  EXPECT_MTL_ERROR((void)mtl::MlpBlockImpl(mtl::MlpBlockOptions(4, {-1})), "MlpBlockOptions.hidden");
}

TEST(HeadOptions, MlpBlockNamesItsLayersByStride) {
  mtl::MlpBlockImpl heads_layout(mtl::MlpBlockOptions(4, {3, 2}));
  EXPECT_EQ(mtl_test::parameter_names(heads_layout), (std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias"}));
  mtl::MlpBlockImpl backbone_layout(mtl::MlpBlockOptions(4, {3, 2}).index_stride(2));
  EXPECT_EQ(mtl_test::parameter_names(backbone_layout),
            (std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"}));
  EXPECT_EQ(backbone_layout.layer_names(), (std::vector<std::string>{"0", "2"}));
  EXPECT_EQ(backbone_layout.out_features(), 2);
  EXPECT_EQ(mtl::MlpBlockImpl(mtl::MlpBlockOptions(4, {})).out_features(), 4);
}

TEST(LossOptions, CppLossesAgreeWithYaml) {
  torch::manual_seed(4);
  auto same = [](const mtl::LossFn& cpp, const mtl::LossFn& yaml, const at::Tensor& out, const at::Tensor& y) {
    EXPECT_EQ(cpp(out, y).item<double>(), yaml(out, y).item<double>());
  };
  const at::Tensor logits = torch::randn({6, 3}, torch::kDouble);
  const at::Tensor classes = torch::tensor(std::vector<int64_t>{0, 2, 1, 1, 0, 2});
  same(mtl::CrossEntropyLoss(mtl::CrossEntropyLossOptions().label_smoothing(0.2).class_weights({1, 2, 3})),
       make_loss("{type: cross_entropy, label_smoothing: 0.2, class_weights: [1, 2, 3]}", mtl_test::class_label(3)),
       logits, classes);
  const at::Tensor ml = (torch::rand({6, 3}) > 0.5).to(torch::kDouble);
  same(mtl::BceWithLogitsLoss(mtl::BceWithLogitsLossOptions().pos_weight({1, 4, 2})),
       make_loss("{type: bce_with_logits, pos_weight: [1, 4, 2]}", mtl_test::multi_label(3)), logits, ml);
  const at::Tensor values = torch::randn({6, 3}, torch::kDouble) * 3;
  same(mtl::MseLoss(), make_loss("mse", mtl_test::real_label(3)), logits, values);
  same(mtl::L1Loss(), make_loss("l1", mtl_test::real_label(3)), logits, values);
  same(mtl::HuberLoss(mtl::HuberLossOptions().delta(0.5)), make_loss("{type: huber, delta: 0.5}", mtl_test::real_label(3)),
       logits, values);
  const at::Tensor token_logits = torch::randn({2, 4, 3}, torch::kDouble);
  const int64_t I = mtl::kIgnoreIndex;
  const at::Tensor tags = torch::tensor(std::vector<int64_t>{I, 1, 2, 0, I, 0, 0, I}).view({2, 4});
  same(mtl::TokenCrossEntropyLoss(mtl::TokenCrossEntropyLossOptions().label_smoothing(0.1)),
       make_loss("{type: token_cross_entropy, label_smoothing: 0.1}", mtl_test::tag_label({"O", "B-X", "I-X"})),
       token_logits, tags);
  // The defaults of the C++ options are those of YAML without keys.
  same(mtl::CrossEntropyLoss(), make_loss("cross_entropy", mtl_test::class_label(3)), logits, classes);
  same(mtl::HuberLoss(), make_loss("huber", mtl_test::real_label(3)), logits, values);
}

TEST(LossOptions, BadCppOptionsThrowNamingTheKey) {
  EXPECT_MTL_ERROR((void)mtl::CrossEntropyLoss(mtl::CrossEntropyLossOptions().label_smoothing(1.0)),
                   "CrossEntropyLossOptions.label_smoothing", "[0, 1)");
  EXPECT_MTL_ERROR((void)mtl::CrossEntropyLoss(mtl::CrossEntropyLossOptions().class_weights({1, -2})),
                   "CrossEntropyLossOptions.class_weights", "positive");
  EXPECT_MTL_ERROR((void)mtl::BceWithLogitsLoss(mtl::BceWithLogitsLossOptions().pos_weight({0})),
                   "BceWithLogitsLossOptions.pos_weight", "positive");
  EXPECT_MTL_ERROR((void)mtl::HuberLoss(mtl::HuberLossOptions().delta(0)), "HuberLossOptions.delta", "positive");
  EXPECT_MTL_ERROR((void)mtl::TokenCrossEntropyLoss(mtl::TokenCrossEntropyLossOptions().label_smoothing(-0.5)),
                   "TokenCrossEntropyLossOptions.label_smoothing");
}
