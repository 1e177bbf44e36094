// Steps in which some tasks have no labels (tasks from different datasets): every weighting method is run on
// the present tasks only. Reference: the same method built for just those tasks, given the same data.
#include <gtest/gtest.h>

#include <cmath>

#include "weighting/weighting_test_util.h"

namespace {

struct StepOut {
  std::vector<double> weights;
  at::Tensor combined;  // gradient methods only
};

// One engine-style step: loss weights, then (gradient methods, either space) the combined gradient. `present` empty = all tasks present.
StepOut step(mtl::Weighting& w, const std::vector<double>& losses, const at::Tensor& G,
             const std::vector<bool>& present, int64_t index = 0) {
  mtl::StepContext ctx{index, 0, {}};
  StepOut out;
  switch (w.needs()) {
    case mtl::GradientKind::kWeightedLoss:
      out.weights = mtl::loss_weights_for_step(w, w.weights_ignore_step_losses() ? std::vector<double>{} : losses,
                                               present, ctx);
      break;
    case mtl::GradientKind::kSharedTaskGrads:
    case mtl::GradientKind::kRepresentationGrads:
      out.weights = mtl::loss_weights_for_step(w, losses, present, ctx);
      out.combined = mtl::combine_for_step(w, G, losses, present, ctx, out.weights);
      break;
  }
  return out;
}

TEST(AbsentTasks, EveryMethodSolvesThePresentTasksProblem) {
  torch::manual_seed(3);
  at::Tensor G3 = at::randn({3, 12}, at::kDouble);
  G3[1].zero_();  // the absent task: no labels, no gradient
  at::Tensor G2 = at::stack({G3[0], G3[2]});
  const std::vector<double> losses3{0.8, 0.0, 1.3}, losses2{0.8, 1.3};
  const std::vector<bool> present{true, false, true};
  for (const std::string& method : mtl::weighting_registry().names()) {
    SCOPED_TRACE(method);
    auto three = mtl_test::make_weighting("{method: " + method + "}", 3);
    auto two = mtl_test::make_weighting("{method: " + method + "}", 2);
    StepOut a = step(*three, losses3, G3, present);
    StepOut b = step(*two, losses2, G2, {true, true});
    ASSERT_EQ(a.weights.size(), 3u);
    EXPECT_EQ(a.weights[1], 0.0) << "an absent task gets no weight";
    for (double x : a.weights) EXPECT_TRUE(std::isfinite(x));
    if (method == "rlw") continue;  // random weights: drawn per run task, not comparable with a 2-task run
    EXPECT_NEAR(a.weights[0], b.weights[0], 1e-9);
    EXPECT_NEAR(a.weights[2], b.weights[1], 1e-9);
    if (a.combined.defined()) {
      ASSERT_TRUE(b.combined.defined());
      EXPECT_LT((a.combined - b.combined).abs().max().item<double>(), 1e-9);
      EXPECT_GT(a.combined.norm().item<double>(), 0.0) << "a zero row must not cancel the update (MGDA)";
    }
  }
}

TEST(AbsentTasks, LearnedStateOfAnAbsentTaskStaysPut) {
  // UW: the absent task's log-variance gets no gradient (neither its loss term nor its regulariser).
  auto uw = mtl_test::make_weighting("{method: uw}", 3);
  mtl::loss_weights_for_step(*uw, {0.5, 0.0, 2.0}, {true, false, true}, mtl::StepContext{});
  at::Tensor g = uw->parameters()[0].grad();
  EXPECT_EQ(g[1].item<double>(), 0.0);
  EXPECT_NE(g[0].item<double>(), 0.0);
  EXPECT_NE(g[2].item<double>(), 0.0);

  // FAMO: after a step without task 1, only the logits of tasks 0 and 2 moved.
  auto famo = mtl_test::make_weighting("{method: famo}", 3);
  const std::vector<bool> present{true, false, true};
  mtl::loss_weights_for_step(*famo, {0.5, 0.0, 2.0}, present, mtl::StepContext{});
  mtl::after_step_for_step(*famo, {0.4, 0.0, 1.0}, present, mtl::StepContext{});
  auto fresh = mtl_test::make_weighting("{method: famo}", 3);
  auto moved = mtl_test::restored_copy(*famo, "{method: famo}", 3);
  // With all three tasks and equal losses, the weights are the softmax of the logits (renormalised by 1/L = 1).
  auto w = mtl::loss_weights_for_step(*moved, {1.0, 1.0, 1.0}, {true, true, true}, mtl::StepContext{});
  auto w0 = mtl::loss_weights_for_step(*fresh, {1.0, 1.0, 1.0}, {true, true, true}, mtl::StepContext{});
  EXPECT_NE(w[0], w0[0]);
  EXPECT_NE(w[2], w0[2]);
  // Task 2's loss fell more (log 2 vs log 1.25): its logit dropped relative to task 0's.
  EXPECT_LT(w[2], w[0]);

  // GradNorm: an absent task's weight gets a zero gradient.
  auto gn = mtl_test::make_weighting("{method: gradnorm, layer: all}", 3);
  at::Tensor G = at::randn({3, 5}, at::kDouble);
  G[1].zero_();
  std::vector<double> ws;
  mtl::loss_weights_for_step(*gn, {0.5, 0.0, 2.0}, present, mtl::StepContext{});
  mtl::combine_for_step(*gn, G, {0.5, 0.0, 2.0}, present, mtl::StepContext{}, ws);
  EXPECT_EQ(gn->parameters()[0].grad()[1].item<double>(), 0.0);
}

}  // namespace
