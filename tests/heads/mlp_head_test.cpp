// The MLP body shared by the built-in heads: options, parameter names, activation, dropout.
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "heads/head.h"
#include "heads/mlp_head.h"
#include "mtl/config/config_node.h"
#include "mtl/metrics/metric.h"
#include "test_util.h"

namespace {

using mtl_test::make_head;
using mtl_test::real_label;

std::vector<std::string> parameter_names(const mtl::Head& head) { return mtl_test::parameter_names(*head); }
}  // namespace

TEST(HeadMlp, ParameterNamesAndShapes) {
  mtl::Head head = make_head("{type: regression, hidden: [8, 6]}", 4, real_label(3));
  EXPECT_EQ(parameter_names(head),
            (std::vector<std::string>{"hidden.0.weight", "hidden.0.bias", "hidden.1.weight", "hidden.1.bias",
                                      "out.weight", "out.bias"}));
  auto params = head->named_parameters();
  EXPECT_EQ(params["hidden.0.weight"].sizes(), (std::vector<int64_t>{8, 4}));
  EXPECT_EQ(params["hidden.1.weight"].sizes(), (std::vector<int64_t>{6, 8}));
  EXPECT_EQ(params["out.weight"].sizes(), (std::vector<int64_t>{3, 6}));
  EXPECT_EQ(params["out.bias"].sizes(), (std::vector<int64_t>{3}));
}

TEST(HeadMlp, NoHiddenLayersIsOneLinear) {
  mtl::Head head = make_head("{type: regression}", 4, real_label(2));
  EXPECT_EQ(parameter_names(head), (std::vector<std::string>{"out.weight", "out.bias"}));
}

TEST(HeadMlp, ActivationIsApplied) {
  // One hidden unit with weight 1, bias 0, then out = 1 * h + 0: the output is activation(x).
  // At x = -2: relu -> 0; tanh -> tanh(-2); gelu -> -2 * Phi(-2) = -2 * 0.5 * erfc(2 / sqrt 2).
  const double x = -2.0;
  const double gelu = x * 0.5 * std::erfc(-x / std::sqrt(2.0));
  for (auto [name, expected] : std::vector<std::pair<std::string, double>>{
           {"relu", 0.0}, {"tanh", std::tanh(x)}, {"gelu", gelu}}) {
    mtl::Head head = make_head("{type: regression, hidden: [1], activation: " + name + "}", 1, real_label(1));
    torch::NoGradGuard no_grad;
    for (auto& p : head->named_parameters()) p.value().fill_(p.key().find("weight") != std::string::npos ? 1 : 0);
    at::Tensor out = head->forward(torch::full({1, 1}, x));
    EXPECT_NEAR(out.item<double>(), expected, 1e-6) << name;
  }
}

TEST(HeadMlp, DropoutOnlyWhileTraining) {
  torch::manual_seed(0);
  mtl::Head head = make_head("{type: regression, dropout: 0.5}", 64, real_label(8));
  at::Tensor x = torch::randn({16, 64});
  head->eval();
  at::Tensor a = head->forward(x), b = head->forward(x);
  EXPECT_TRUE(torch::equal(a, b));
  head->train();
  EXPECT_FALSE(torch::allclose(head->forward(x), a));
}

TEST(HeadMlp, ResolvedConfigRecordsDefaults) {
  mtl::Config cfg = mtl::Config::from_string("x: {type: classification}");
  mtl::ConfigNode node = cfg.root().component("x");
  mtl::head_registry().get(node.type()).make(node, {4, {"y", mtl::LabelKind::kClass, 3, {}}});
  cfg.check_unused();
  std::string resolved = cfg.resolved_yaml();
  for (const char* key : {"hidden", "dropout", "activation: relu", "num_classes: 3"})
    EXPECT_NE(resolved.find(key), std::string::npos) << key << " missing from:\n" << resolved;
}

TEST(HeadMlp, BadOptionsNameTheKey) {
  EXPECT_MTL_ERROR(make_head("{type: regression, dropout: 1.0}", 4, real_label(1)), "dropout", "[0, 1)");
  EXPECT_MTL_ERROR(make_head("{type: regression, dropout: -0.1}", 4, real_label(1)), "dropout");
  EXPECT_MTL_ERROR(make_head("{type: regression, activation: rleu}", 4, real_label(1)), "activation",
                   "did you mean 'relu'");
  EXPECT_MTL_ERROR(make_head("{type: regression, hidden: [8, 0]}", 4, real_label(1)), "hidden", "positive");
  EXPECT_MTL_ERROR(make_head("{type: regression, hidden: 8}", 4, real_label(1)), "hidden", "list");
}

TEST(HeadMlp, UnknownKeyIsAnError) {
  EXPECT_MTL_ERROR(make_head("{type: regression, hiden: [8]}", 4, real_label(1)), "hiden", "did you mean 'hidden'");
}

TEST(HeadRegistry, BuiltinsAndTheirDefaults) {
  EXPECT_EQ(mtl::head_registry().names(),
            (std::vector<std::string>{"classification", "dense_regression", "multilabel", "regression", "segmentation",
                                      "token_classification"}));
  EXPECT_EQ(mtl::loss_registry().names(),
            (std::vector<std::string>{"bce_with_logits", "cross_entropy", "huber", "l1", "mse", "token_cross_entropy"}));
  // Every head's default loss and metrics exist and accept the head's label kind.
  for (const std::string& name : mtl::head_registry().names()) {
    const mtl::HeadEntry& head = mtl::head_registry().get(name);
    const auto& loss_kinds = mtl::loss_registry().get(head.default_loss).label_kinds;
    EXPECT_NE(std::find(loss_kinds.begin(), loss_kinds.end(), head.label_kind), loss_kinds.end()) << name;
    for (const std::string& metric : head.default_metrics) {
      const auto& kinds = mtl::metric_registry().get(metric).label_kinds;
      EXPECT_NE(std::find(kinds.begin(), kinds.end(), head.label_kind), kinds.end()) << name << " " << metric;
    }
  }
  EXPECT_EQ(mtl::head_registry().get("classification").default_metrics, (std::vector<std::string>{"accuracy"}));
  EXPECT_EQ(mtl::head_registry().get("multilabel").default_metrics,
            (std::vector<std::string>{"accuracy", "macro_f1"}));
  EXPECT_EQ(mtl::head_registry().get("regression").default_metrics,
            (std::vector<std::string>{"mae", "rmse", "r2"}));
  EXPECT_EQ(mtl::head_registry().get("segmentation").default_metrics,
            (std::vector<std::string>{"miou", "pixel_accuracy"}));
  EXPECT_EQ(mtl::head_registry().get("dense_regression").default_loss, "mse");
}
