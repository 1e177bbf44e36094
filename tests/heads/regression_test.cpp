// The regression head and the mse, l1 and huber losses, against closed forms.
#include <torch/torch.h>

#include "heads/head.h"
#include "heads/regression.h"
#include "mtl/config/config_node.h"
#include "test_util.h"

namespace {

using mtl_test::make_head;
using mtl_test::real_label;

mtl::LossFn make_loss(const std::string& yaml, const mtl::LabelInfo& label = real_label(1)) {
  return mtl_test::make_loss(yaml, label);
}

double loss_value(const std::string& yaml, const at::Tensor& output, const at::Tensor& target) {
  return make_loss(yaml)(output, target).item<double>();
}

// Differences output - target = [-0.5, 2, 0].
at::Tensor output() { return torch::tensor({1.0, 2.0, 4.0}, torch::kDouble); }
at::Tensor target() { return torch::tensor({1.5, 0.0, 4.0}, torch::kDouble); }

}  // namespace

TEST(HeadRegression, OneDimensionGivesVector) {
  mtl::Head head = make_head("{type: regression, hidden: [4]}", 3, real_label(1));
  at::Tensor out = head->forward(torch::randn({5, 3}));
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{5}));
  EXPECT_TRUE(torch::equal(head->predict(out), out));
}

TEST(HeadRegression, SeveralDimensionsGiveMatrix) {
  mtl::Head head = make_head("regression", 3, real_label(4));
  at::Tensor out = head->forward(torch::randn({5, 3}));
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{5, 4}));
  EXPECT_TRUE(torch::equal(head->predict(out), out));
}

TEST(LossMse, MatchesClosedForm) {
  // (0.25 + 4 + 0) / 3
  EXPECT_NEAR(loss_value("mse", output(), target()), 4.25 / 3, 1e-12);
  // [B, D]: differences [1, 0, 0, -2] -> (1 + 4) / 4, the mean over examples of the per-example means
  at::Tensor out = torch::tensor({1.0, 2.0, 3.0, 4.0}, torch::kDouble).reshape({2, 2});
  at::Tensor tgt = torch::tensor({0.0, 2.0, 3.0, 6.0}, torch::kDouble).reshape({2, 2});
  EXPECT_NEAR(make_loss("mse", real_label(2))(out, tgt).item<double>(), 5.0 / 4, 1e-12);
}

TEST(LossL1, MatchesClosedForm) {
  // (0.5 + 2 + 0) / 3
  EXPECT_NEAR(loss_value("l1", output(), target()), 2.5 / 3, 1e-12);
  at::Tensor out = torch::tensor({1.0, 2.0, 3.0, 4.0}, torch::kDouble).reshape({2, 2});
  at::Tensor tgt = torch::tensor({0.0, 2.0, 3.0, 6.0}, torch::kDouble).reshape({2, 2});
  EXPECT_NEAR(make_loss("l1", real_label(2))(out, tgt).item<double>(), 3.0 / 4, 1e-12);
}

TEST(LossHuber, BothBranches) {
  // delta = 1 (default): |-0.5| < 1 -> 0.5 * 0.25 = 0.125; |2| >= 1 -> 1 * (2 - 0.5) = 1.5; 0 -> 0.
  EXPECT_NEAR(loss_value("huber", output(), target()), 1.625 / 3, 1e-12);
  // delta = 3: all quadratic -> 0.5 * (0.25 + 4) / 3
  EXPECT_NEAR(loss_value("{type: huber, delta: 3}", output(), target()), 2.125 / 3, 1e-12);
  // delta = 0.25: all linear -> 0.25 * (0.5 - 0.125) + 0.25 * (2 - 0.125) = 0.09375 + 0.46875 = 0.5625
  EXPECT_NEAR(loss_value("{type: huber, delta: 0.25}", output(), target()), 0.5625 / 3, 1e-12);
}

TEST(LossHuber, BadDeltaNamesTheKey) {
  EXPECT_MTL_ERROR(make_loss("{type: huber, delta: -1}"), "delta", "positive");
  EXPECT_MTL_ERROR(make_loss("{type: huber, delta: 0}"), "delta", "positive");
}

TEST(LossMse, UnknownKeyIsAnError) {
  mtl::Config cfg = mtl::Config::from_string("x: {type: mse, delta: 1}");
  mtl::ConfigNode node = cfg.root().component("x");
  mtl::loss_registry().get(node.type()).make(node, real_label(1));
  EXPECT_MTL_ERROR(cfg.check_unused(), "delta");
}
