// Loss-based weighting methods (GLS, UW, DWA, RLW) against independent NumPy values
// (loss_weighting_reference.py, output kept in loss_weighting_reference.txt), degenerate cases, option
// errors, checkpoint state, and end-to-end training with 1 and 2 threads.
#include <torch/torch.h>

#include <fstream>
#include <map>
#include <sstream>

#include "mtl/config/config_node.h"
#include "mtl/run/trainer.h"
#include "mtl/weighting/weighting.h"
#include "test_util.h"
#include "weighting/weighting_test_util.h"

namespace {

std::map<std::string, std::vector<double>> reference() {
  std::ifstream in(std::string(MTL_SOURCE_DIR) + "/tests/weighting/loss_weighting_reference.txt");
  std::map<std::string, std::vector<double>> out;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ss(line);
    std::string name;
    ss >> name;
    double v;
    while (ss >> v) out[name].push_back(v);
  }
  return out;
}


void expect_near(const std::vector<double>& got, const std::vector<double>& want, double tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << what << " [" << i << "]";
}

}  // namespace

TEST(LossWeighting, ReferenceFixtureIsPresent) { EXPECT_EQ(reference().size(), 15u); }

TEST(LossWeighting, GlsIsTheGradientOfTheGeometricMean) {
  auto ref = reference();
  auto w = mtl_test::make_weighting("{method: gls}", 3);
  expect_near(w->loss_weights({0.5, 2.0, 1.5}, {}), ref["gls_three"], 1e-7, "three tasks");
  expect_near(w->last_weights(), ref["gls_three"], 1e-7, "logged weights");
  expect_near(mtl_test::make_weighting("{method: gls}", 2)->loss_weights({0.7, 0.7}, {}), ref["gls_equal"], 1e-7, "identical losses");
  expect_near(mtl_test::make_weighting("{method: gls}", 1)->loss_weights({1.3}, {}), ref["gls_one"], 1e-7, "one task");
  auto zero = mtl_test::make_weighting("{method: gls}", 2)->loss_weights({0.0, 1.0}, {});  // clamped, finite
  for (double v : zero) EXPECT_TRUE(std::isfinite(v));
}

TEST(LossWeighting, UncertaintyWeightsAndLogVarianceGradient) {
  auto ref = reference();
  auto w = mtl_test::make_weighting("{method: uw}", 3);
  ASSERT_EQ(w->parameters().size(), 1u);
  at::Tensor s = w->parameters()[0];
  EXPECT_TRUE(torch::allclose(s, torch::full({3}, -0.5, torch::kDouble)));  // LibMTL's initial value
  {
    torch::NoGradGuard no_grad;
    s.copy_(torch::tensor({-0.5, 0.3, 1.0}, torch::kDouble));
  }
  expect_near(w->loss_weights({1.2, 0.4, 0.0}, {}), ref["uw_weights"], 1e-7, "weights");
  ASSERT_TRUE(s.grad().defined());
  std::vector<double> g(s.grad().data_ptr<double>(), s.grad().data_ptr<double>() + 3);
  expect_near(g, ref["uw_sgrad"], 1e-7, "d objective / d log-variance");
  // Checkpoint state: the learned log-variances.
  auto restored = mtl_test::restored_copy(*w, "{method: uw}", 3);
  EXPECT_TRUE(torch::equal(restored->parameters()[0], s));
}

TEST(LossWeighting, DwaFollowsTheLossRatiosOfTheLastTwoEpochs) {
  auto ref = reference();
  for (auto [yaml, key] : {std::pair<std::string, std::string>{"{method: dwa}", "dwa_t2"},
                          {"{method: dwa, temperature: 0.5}", "dwa_t05"}}) {
    auto w = mtl_test::make_weighting(yaml, 3);
    EXPECT_TRUE(w->weights_ignore_step_losses());
    expect_near(w->loss_weights({}, {}), {1, 1, 1}, 0, "epoch 0");
    w->on_epoch_end({2.0, 1.0, 0.5});
    expect_near(w->loss_weights({}, {}), {1, 1, 1}, 0, "epoch 1");
    w->on_epoch_end({1.0, 0.9, 0.5});
    expect_near(w->loss_weights({}, {}), ref[key], 1e-12, key);
    // Resume: the epoch history is checkpoint state.
    auto restored = mtl_test::restored_copy(*w, yaml, 3);
    expect_near(restored->loss_weights({}, {}), ref[key], 1e-12, key + " restored");
  }
  auto one = mtl_test::make_weighting("{method: dwa}", 1);
  one->on_epoch_end({1.0});
  one->on_epoch_end({0.5});
  expect_near(one->loss_weights({}, {}), {1.0}, 1e-12, "one task");
}

TEST(LossWeighting, RlwDrawsSoftmaxWeightsFromTheStep) {
  auto a = mtl_test::make_weighting("{method: rlw}", 3), b = mtl_test::make_weighting("{method: rlw}", 3), c = mtl_test::make_weighting("{method: rlw, seed: 7}", 3);
  std::vector<double> mean(3, 0.0);
  const int steps = 4000;
  for (int step = 0; step < steps; ++step) {
    auto w = a->loss_weights({}, {step, 0});
    EXPECT_EQ(w, b->loss_weights({}, {step, 0}));  // same (seed, step) -> same weights
    double sum = 0;
    for (size_t t = 0; t < 3; ++t) {
      EXPECT_GT(w[t], 0.0);
      sum += w[t];
      mean[t] += w[t] / steps;
    }
    EXPECT_NEAR(sum, 1.0, 1e-12);
    if (step == 0) {
      EXPECT_NE(w, a->loss_weights({}, {1, 0}));
      EXPECT_NE(w, c->loss_weights({}, {0, 0}));
    }
  }
  for (double m : mean) EXPECT_NEAR(m, 1.0 / 3, 0.01);  // exchangeable: each task 1/T on average
}

TEST(LossWeighting, BadOptionsAreRejectedWithTheKey) {
  EXPECT_MTL_ERROR(mtl_test::make_weighting("{method: dwa, temperature: -1}", 2), "w.yaml", "weighting.temperature", "positive");
  EXPECT_MTL_ERROR(mtl_test::make_weighting("{method: dwa, temprature: 1}", 2), "w.yaml", "temprature");
  EXPECT_MTL_ERROR(mtl_test::make_weighting("{method: uw, init: 50}", 2), "w.yaml", "weighting.init", "[-20, 20]");
  EXPECT_MTL_ERROR(mtl_test::make_weighting("{method: rlw, seed: -3}", 2), "w.yaml", "weighting.seed", ">= 0");
  std::string base = "data: {type: multi_fashion}\nmodel: {backbone: lenet}\ntasks: {left: {label: left}}\n";
  EXPECT_MTL_ERROR(mtl::assemble(mtl::Config::from_string(
                       base + "engine: {mode: async}\nweighting: {method: uw}\n", "a.yaml")),
                   "a.yaml", "weighting.method", "engine.mode sync");
}

TEST(LossWeighting, ImtlLossPartLearnsLossScales) {
  auto ref = reference();
  auto w = mtl_test::make_weighting("{method: imtl, part: loss}", 3);
  EXPECT_EQ(w->needs(), mtl::GradientKind::kWeightedLoss);
  ASSERT_EQ(w->parameters().size(), 1u);
  at::Tensor s = w->parameters()[0];
  EXPECT_TRUE(torch::equal(s, torch::zeros({3}, torch::kDouble)));  // the paper's start: scales e^0 = 1
  {
    torch::NoGradGuard no_grad;
    s.copy_(torch::tensor({0.0, 0.3, -1.0}, torch::kDouble));
  }
  expect_near(w->loss_weights({1.2, 0.4, 0.05}, {}), ref["imtl_l_weights"], 1e-7, "weights");
  std::vector<double> g(s.grad().data_ptr<double>(), s.grad().data_ptr<double>() + 3);
  expect_near(g, ref["imtl_l_sgrad"], 1e-7, "d objective / d scale");
  auto restored = mtl_test::restored_copy(*w, "{method: imtl, part: loss}", 3);
  EXPECT_TRUE(torch::equal(restored->parameters()[0], s));
  EXPECT_TRUE(mtl_test::make_weighting("{method: imtl, part: gradient}", 3)->parameters().empty());
}

TEST(LossWeighting, StchWarmsUpThenSmoothsTheMaxOfNadirNormalisedLosses) {
  auto ref = reference();
  for (auto [yaml, key] : {std::pair<std::string, std::string>{"{method: stch, warmup_epochs: 1}", "stch_mu1"},
                          {"{method: stch, warmup_epochs: 1, mu: 0.1}", "stch_mu0.1"}}) {
    auto w = mtl_test::make_weighting(yaml, 3);
    expect_near(w->loss_weights({2.0, 0.5, 1.0}, {0, 0}), ref["stch_warmup"], 1e-7, "epoch 0: log losses");
    // Epoch 1 (= warmup_epochs): still log losses; its losses are averaged into the nadir vector.
    expect_near(w->loss_weights({2.0, 0.5, 1.0}, {3, 1}), ref["stch_warmup"], 1e-7, "warm-up epoch");
    w->loss_weights({1.5, 0.4, 0.9}, {4, 1});
    auto restored = mtl_test::restored_copy(*w, yaml, 3);  // nadir state survives a checkpoint
    for (auto* m : {w.get(), restored.get()})
      expect_near(m->loss_weights({1.2, 0.35, 1.1}, {6, 2}), ref[key], 1e-6, key);
  }
  // Default: LibMTL's mu 1 and 4 warm-up epochs (epoch 4 still log losses).
  auto d = mtl_test::make_weighting("{method: stch}", 2);
  expect_near(d->loss_weights({2.0, 0.5}, {0, 4}), {0.5, 2.0}, 1e-12, "default warm-up");
}

TEST(LossWeighting, FamoMatchesTorchAdamOnItsTaskLogits) {
  auto ref = reference();
  auto w = mtl_test::make_weighting("{method: famo}", 3);
  EXPECT_TRUE(w->needs_losses_after_step());
  EXPECT_TRUE(w->parameters().empty());  // the logits have their own Adam, not the model's optimizer
  std::vector<std::vector<double>> before{{2.0, 0.5, 1.0}, {1.6, 0.45, 0.95}, {1.3, 0.44, 0.7}};
  std::vector<std::vector<double>> after{{1.6, 0.45, 0.95}, {1.3, 0.44, 0.7}, {1.1, 0.43, 0.6}};
  std::unique_ptr<mtl::Weighting> restored;
  for (size_t k = 0; k < 3; ++k) {
    std::string key = "famo_step" + std::to_string(k);
    auto got = w->loss_weights(before[k], {int64_t(k), 0});
    expect_near(got, ref[key], 1e-9, key);
    if (restored) expect_near(restored->loss_weights(before[k], {int64_t(k), 0}), ref[key], 1e-9, key + " restored");
    double sum = 0;
    for (double x : got) sum += x;
    EXPECT_NEAR(sum, 1.0, 1e-12);
    w->after_step(after[k], {int64_t(k), 0});
    if (restored) restored->after_step(after[k], {int64_t(k), 0});
    if (k == 0) restored = mtl_test::restored_copy(*w, "{method: famo}", 3);  // logits + Adam moments
  }
}

// Degenerate cases, derived by hand: one task, identical losses, a zero loss.
TEST(LossWeighting, FamoAndStchDegenerateCases) {
  auto famo1 = mtl_test::make_weighting("{method: famo}", 1);
  expect_near(famo1->loss_weights({0.7}, {}), {1.0}, 1e-15, "famo one task");
  famo1->after_step({0.5}, {});
  expect_near(famo1->loss_weights({0.5}, {}), {1.0}, 1e-15, "famo one task after an update");
  auto famo = mtl_test::make_weighting("{method: famo}", 3);
  expect_near(famo->loss_weights({0.4, 0.4, 0.4}, {}), {1.0 / 3, 1.0 / 3, 1.0 / 3}, 1e-15, "famo identical");
  famo->after_step({0.3, 0.3, 0.3}, {});  // equal decrease: the logits' gradient is 0, only decay (0) remains
  expect_near(famo->loss_weights({0.4, 0.4, 0.4}, {}), {1.0 / 3, 1.0 / 3, 1.0 / 3}, 1e-15, "famo identical after");
  auto zero = famo->loss_weights({0.0, 1.0, 1.0}, {});  // a zero loss takes (almost) all the weight
  EXPECT_NEAR(zero[0], 1.0, 1e-7);
  for (double v : zero) EXPECT_TRUE(std::isfinite(v));

  auto stch1 = mtl_test::make_weighting("{method: stch, warmup_epochs: 0}", 1);
  stch1->loss_weights({2.0}, {0, 0});  // nadir 2
  expect_near(stch1->loss_weights({0.5}, {1, 1}), {2.0}, 1e-12, "stch one task: 1/L");
  auto stch = mtl_test::make_weighting("{method: stch, warmup_epochs: 0, mu: 0.3}", 2);
  stch->loss_weights({1.0, 4.0}, {0, 0});  // nadir (1, 4)
  // Equal normalised losses: equal softmax shares, w_t = T (1/T) / L_t = 1 / L_t.
  expect_near(stch->loss_weights({0.5, 2.0}, {1, 1}), {2.0, 0.5}, 1e-12, "stch equal normalised losses");
  for (double v : stch->loss_weights({0.0, 2.0}, {1, 1})) EXPECT_TRUE(std::isfinite(v));
}

TEST(LossWeighting, NewMethodOptionsAreRejectedWithTheKey) {
  EXPECT_MTL_ERROR(mtl_test::make_weighting("{method: famo, lr: 0}", 2), "w.yaml", "weighting.lr", "positive");
  EXPECT_MTL_ERROR(mtl_test::make_weighting("{method: famo, gamma: -1}", 2), "weighting.gamma", ">= 0");
  EXPECT_MTL_ERROR(mtl_test::make_weighting("{method: stch, mu: 0}", 2), "weighting.mu", "positive");
  EXPECT_MTL_ERROR(mtl_test::make_weighting("{method: stch, warmup_epochs: -2}", 2), "weighting.warmup_epochs", ">= 0");
  EXPECT_MTL_ERROR(mtl_test::make_weighting("{method: imtl, part: half}", 2), "weighting.part", "gradient");
  std::string base = "data: {type: multi_fashion}\nmodel: {backbone: lenet}\ntasks: {left: {label: left}}\n";
  EXPECT_MTL_ERROR(mtl::assemble(mtl::Config::from_string(
                       base + "engine: {mode: async}\nweighting: {method: famo}\n", "a.yaml")),
                   "a.yaml", "weighting.method", "engine.mode sync");
}

// Every loss-based method trains MultiFashion with 1 and 2 threads to the same weights (same seed).
TEST(LossWeighting, EveryMethodTrainsTheSameWithOneAndTwoThreads) {
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  mtl_test::TempDir dir("lossw");
  for (std::string method : {"gls", "uw", "dwa", "rlw", "famo", "stch, warmup_epochs: 1", "imtl, part: loss"}) {
    mtl::Run one = mtl_test::expect_same_training_with_one_and_two_threads(method, 3, 300, dir);
    if (method == "uw")  // the log-variances were learned
      EXPECT_FALSE(torch::allclose(one.weighting->parameters()[0], torch::full({2}, -0.5, torch::kDouble)));
    if (method == "dwa") EXPECT_NE(one.weighting->last_weights()[0], 1.0);  // epoch 3 used the ratios
  }
}
