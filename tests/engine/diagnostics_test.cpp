// Gradient diagnostics (mtl/engine/diagnostics.h): norms, cosines and conflict share against hand-computed
// cases, and the engine's diagnostics with 1-3 threads against single-thread full-batch autograd (float64) for
// loss-based (both paths), parameter-space and representation-space methods; diagnostics leave the step's
// gradients bitwise unchanged; the trainer writes `diagnostics` lines.
#include "mtl/engine/diagnostics.h"

#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "mtl/engine/parallel_engine.h"
#include "mtl/run/assembler.h"
#include "mtl/run/trainer.h"
#include "mtl/weighting/gradient_method.h"
#include "test_util.h"

namespace {

at::Tensor rows(std::vector<std::vector<double>> r) {
  std::vector<at::Tensor> out;
  for (auto& x : r) out.push_back(torch::tensor(x, torch::kDouble));
  return at::stack(out);
}

}  // namespace

TEST(Diagnostics, HandComputedCosinesAndConflictShare) {
  // |g0| = |g1| = 5, g0.g1 = -16: cosine -0.64; g2 = 0 has no cosine.
  auto d = mtl::diagnose_task_gradients(rows({{3, 4, 0}, {0, -4, 3}, {0, 0, 0}}), {true, true, true});
  EXPECT_DOUBLE_EQ(d.norms[0], 5.0);
  EXPECT_DOUBLE_EQ(d.norms[1], 5.0);
  EXPECT_DOUBLE_EQ(d.norms[2], 0.0);
  EXPECT_NEAR(d.cosine[0][1], -0.64, 1e-15);
  EXPECT_NEAR(d.cosine[1][0], -0.64, 1e-15);
  EXPECT_DOUBLE_EQ(d.cosine[0][0], 1.0);
  EXPECT_TRUE(std::isnan(d.cosine[0][2]));
  EXPECT_TRUE(std::isnan(d.cosine[2][2]));
  EXPECT_DOUBLE_EQ(d.conflict_share, 1.0);  // the one defined pair conflicts

  // Orthogonal (0), opposed-ish (-1/sqrt 2) and aligned-ish (1/sqrt 2): one conflicting pair of three.
  d = mtl::diagnose_task_gradients(rows({{1, 0}, {0, 1}, {-1, 1}}), {true, true, true});
  EXPECT_NEAR(d.norms[2], std::sqrt(2.0), 1e-15);
  EXPECT_NEAR(d.cosine[0][1], 0.0, 1e-15);
  EXPECT_NEAR(d.cosine[0][2], -1 / std::sqrt(2.0), 1e-15);
  EXPECT_NEAR(d.cosine[1][2], 1 / std::sqrt(2.0), 1e-15);
  EXPECT_NEAR(d.conflict_share, 1.0 / 3.0, 1e-15);

  // An absent task's row is ignored even when it is not zero.
  d = mtl::diagnose_task_gradients(rows({{1, 0}, {-1, 0}, {-1, 1}}), {true, false, true});
  EXPECT_DOUBLE_EQ(d.norms[1], 0.0);
  EXPECT_TRUE(std::isnan(d.cosine[0][1]));
  EXPECT_DOUBLE_EQ(d.conflict_share, 1.0);
  d = mtl::diagnose_task_gradients(rows({{1, 0}, {0, 0}}), {true, true});
  EXPECT_TRUE(std::isnan(d.conflict_share));  // no pair with two nonzero gradients
}

TEST(Diagnostics, StepsAreTheFirstAndEveryNth) {
  std::vector<int64_t> logged;
  for (int64_t taken = 0; taken < 12; ++taken)
    if (mtl::is_diagnostic_step(taken, 5)) logged.push_back(taken + 1);
  EXPECT_EQ(logged, (std::vector<int64_t>{1, 5, 10}));
  EXPECT_FALSE(mtl::is_diagnostic_step(0, 0));
  EXPECT_TRUE(mtl::is_diagnostic_step(3, 1));
}

namespace {

// Weights known before the step (the fused one-pass path).
class Fixed : public mtl::Weighting {
 public:
  std::vector<double> loss_weights(const std::vector<double>& l, const mtl::StepContext&) override {
    return {0.7, 1.3};
  }
  bool weights_ignore_step_losses() const override { return true; }
};

// Weights from this step's full-batch losses (the two-pass path): w_t = L_t / sum L.
class LossProportional : public mtl::Weighting {
 public:
  std::vector<double> loss_weights(const std::vector<double>& l, const mtl::StepContext&) override {
    return {l[0] / (l[0] + l[1]), l[1] / (l[0] + l[1])};
  }
};

// A parameter-space gradient method: d = g0 + 0.5 g1.
class HalfSecond : public mtl::GradientWeighting {
 public:
  at::Tensor combine(const at::Tensor& G, const std::vector<double>&, const mtl::StepContext&) override {
    at::Tensor w = torch::tensor({1.0, 0.5}, torch::kDouble);
    set_last_weights(w);
    return mtl::weighted_rows(G, w);
  }
};

// The same in representation space.
class HalfSecondRepresentation : public HalfSecond {
 public:
  HalfSecondRepresentation() { set_space(mtl::GradientSpace::kRepresentation); }
};

mtl::Run make_run() {
  std::string yaml = "data: {type: multi_fashion}\nmodel: {backbone: lenet}\n"
                     "tasks:\n  left: {label: left}\n  right: {label: right}\ntrainer: {threads: 1}\n";
  mtl::Run ex = mtl::assemble(mtl::Config::from_string(yaml, "d.yaml"));
  ex.model->to(at::kDouble);
  return ex;
}

mtl::Batch random_batch(int64_t n) {
  torch::manual_seed(7);
  mtl::Batch b;
  b.size = n;
  b.inputs["image"] = torch::randn({n, 1, 36, 36}, torch::kDouble);
  b.targets["left"] = torch::randint(0, 10, {n}, torch::kLong);
  b.targets["right"] = torch::randint(0, 10, {n}, torch::kLong);
  return b;
}

at::Tensor flat(const std::vector<at::Tensor>& g) {
  std::vector<at::Tensor> f;
  for (auto& x : g) f.push_back(x.reshape(-1));
  return at::cat(f);
}

// Norms, cosines and conflict of the rows, computed here with dot products (not through the Gram matrix).
void expect_diagnostics(const mtl::GradientDiagnostics& d, const at::Tensor& R, const std::string& what) {
  const double n0 = R[0].norm().item<double>(), n1 = R[1].norm().item<double>();
  const double cos = R[0].dot(R[1]).item<double>() / (n0 * n1);
  EXPECT_NEAR(d.norms[0], n0, 1e-10 * n0) << what;
  EXPECT_NEAR(d.norms[1], n1, 1e-10 * n1) << what;
  EXPECT_NEAR(d.cosine[0][1], cos, 1e-10) << what;
  EXPECT_DOUBLE_EQ(d.conflict_share, cos < 0 ? 1.0 : 0.0) << what;
}

}  // namespace

TEST(Diagnostics, EngineMatchesSingleThreadFullBatchAutograd) {
  mtl::Run ex = make_run();
  mtl::Batch batch = random_batch(13);
  auto out = ex.model->forward(batch.inputs);
  auto losses = mtl::task_losses(ex.tasks, out.outputs, batch);
  auto shared = ex.model->shared_parameters();
  at::Tensor g0 = flat(torch::autograd::grad({losses[0]}, shared, {}, true));
  at::Tensor g1 = flat(torch::autograd::grad({losses[1]}, shared, {}, true));
  at::Tensor G = at::stack({g0, g1});
  at::Tensor R = at::stack({torch::autograd::grad({losses[0]}, {out.features}, {}, true)[0].reshape(-1),
                            torch::autograd::grad({losses[1]}, {out.features}, {}, true)[0].reshape(-1)});
  const double l0 = losses[0].item<double>(), l1 = losses[1].item<double>();
  const std::vector<double> proportional{l0 / (l0 + l1), l1 / (l0 + l1)};
  // Representation space: the trunk gets the gradient of L0 + 0.5 L1 through dZ.
  at::Tensor rep_trunk = flat(torch::autograd::grad({losses[0] + 0.5 * losses[1]}, shared, {}, true));

  struct Case {
    std::string name;
    std::function<std::unique_ptr<mtl::Weighting>()> make;
    std::vector<double> weights;
    bool representation;
  };
  std::vector<Case> cases{
      {"fixed", [] { return std::make_unique<Fixed>(); }, {0.7, 1.3}, false},
      {"loss-proportional", [] { return std::make_unique<LossProportional>(); }, proportional, false},
      {"gradient method", [] { return std::make_unique<HalfSecond>(); }, {1.0, 0.5}, false},
      {"representation", [] { return std::make_unique<HalfSecondRepresentation>(); }, {1.0, 0.5}, true},
  };
  for (const Case& c : cases)
    for (int threads : {1, 2, 3}) {
      const std::string what = c.name + ", threads " + std::to_string(threads);
      auto weighting = c.make();
      mtl::EngineOptions options{threads, 1, 0};
      options.diagnostics_every = 1;
      auto engine = mtl::make_parallel_engine(ex.model, ex.tasks, *weighting, options, ex.make_model);
      mtl::StepResult r = engine->compute_gradients(batch, {});
      ASSERT_TRUE(r.diagnostics.has_value()) << what;
      EXPECT_EQ(r.diagnostics->representation, c.representation) << what;
      expect_diagnostics(*r.diagnostics, c.representation ? R : G, what);
      for (size_t t = 0; t < 2; ++t) EXPECT_NEAR(r.weights[t], c.weights[t], 1e-12) << what;
      at::Tensor d = c.representation ? rep_trunk : G[0] * c.weights[0] + G[1] * c.weights[1];
      EXPECT_NEAR(r.diagnostics->combined_norm, d.norm().item<double>(), 1e-10 * d.norm().item<double>()) << what;
    }
}

TEST(Diagnostics, LeaveTheStepsGradientsBitwiseUnchanged) {
  mtl::Run ex = make_run();
  ex.model->to(at::kFloat);
  mtl::Batch batch = random_batch(13);
  batch.inputs["image"] = batch.inputs["image"].to(at::kFloat);
  auto grads = [&](mtl::Weighting& w, int64_t every, int64_t step, bool expect) {
    mtl::EngineOptions options{2, 1, 0};
    options.diagnostics_every = every;
    auto engine = mtl::make_parallel_engine(ex.model, ex.tasks, w, options, ex.make_model);
    mtl::StepContext ctx;
    ctx.step = step;
    mtl::StepResult r = engine->compute_gradients(batch, ctx);
    EXPECT_EQ(r.diagnostics.has_value(), expect) << "every " << every << " step " << step;
    std::vector<at::Tensor> g;
    for (auto& p : ex.model->parameters()) g.push_back(p.grad().clone());
    return g;
  };
  Fixed fixed;
  LossProportional proportional;
  HalfSecond method;
  for (mtl::Weighting* w : std::vector<mtl::Weighting*>{&fixed, &proportional, &method}) {
    auto plain = grads(*w, 0, 0, false);
    auto diagnosed = grads(*w, 1, 0, true);
    auto skipped = grads(*w, 3, 1, false);  // step 2 of every 3: not a diagnostic step
    for (size_t k = 0; k < plain.size(); ++k) {
      EXPECT_TRUE(torch::equal(plain[k], diagnosed[k])) << "parameter " << k;
      EXPECT_TRUE(torch::equal(plain[k], skipped[k])) << "parameter " << k;
    }
  }
}

TEST(Diagnostics, TrainerWritesDiagnosticsLines) {
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  mtl_test::TempDir dir("diagnostics");
  std::string yaml = "data: {type: multi_fashion, train_size: 320, test_size: 40, cache_dir: '" + dir.file("c") +
                     "'}\nmodel: {backbone: lenet}\ntasks: {left: {label: left}, right: {label: right}}\n"
                     "diagnostics: {every: 4}\n"
                     "trainer: {epochs: 1, batch_size: 32, threads: 2, run_dir: '" + dir.file("run") + "'}\n";
  mtl::Run ex = mtl::assemble(mtl::Config::from_string(yaml, "d.yaml"));
  mtl::train(ex, {"", false});
  std::ifstream in(dir.file("run") + "/metrics.jsonl");
  std::vector<int64_t> steps;
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    if (j["event"] != "diagnostics") continue;
    steps.push_back(j["step"].get<int64_t>());
    for (const char* key : {"left/grad_norm", "right/grad_norm", "left/weight", "right/weight", "cosine/left/right",
                            "conflict_share", "combined_norm", "representation"})
      EXPECT_TRUE(j.contains(key)) << key << " in " << line;
    const double c = j["cosine/left/right"].get<double>();
    EXPECT_GE(c, -1.0);
    EXPECT_LE(c, 1.0);
    EXPECT_DOUBLE_EQ(j["conflict_share"].get<double>(), c < 0 ? 1.0 : 0.0);
    EXPECT_GT(j["combined_norm"].get<double>(), 0.0);
  }
  EXPECT_EQ(steps, (std::vector<int64_t>{1, 4, 8}));  // 10 steps of 32
}

TEST(Diagnostics, BadConfigNamesTheKey) {
  auto parse = [](const std::string& extra) {
    std::string yaml = "data: {type: multi_fashion}\nmodel: {backbone: lenet}\ntasks: {left: {label: left}}\n" + extra;
    return mtl::parse_run_config(mtl::Config::from_string(yaml, "bad.yaml"), {});
  };
  EXPECT_MTL_ERROR(parse("diagnostics: {every: -1}\n"), "bad.yaml", "diagnostics.every");
  EXPECT_MTL_ERROR(parse("diagnostics: {every: often}\n"), "diagnostics.every");
  EXPECT_MTL_ERROR(parse("diagnostics: {every: 5}\nengine: {mode: async}\n"), "diagnostics.every", "sync");
  EXPECT_MTL_ERROR(mtl::assemble(mtl::Config::from_string(
                       "data: {type: multi_fashion}\nmodel: {backbone: lenet}\ntasks: {left: {label: left}}\n"
                       "diagnostics: {evry: 5}\n",
                       "bad.yaml")),
                   "diagnostics.evry");
  EXPECT_EQ(parse("diagnostics: {every: 5}\n").engine.diagnostics_every, 5);
  EXPECT_EQ(parse("").engine.diagnostics_every, 0);
}
