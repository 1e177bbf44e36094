// weighting.space: representation, end to end through the parallel engine. For every gradient-based method the
// engine's gradients equal a single-thread full-batch reference computed with plain autograd (float64): the
// per-task gradients of the losses w.r.t. the whole batch's shared representation Z, the method's rule applied
// to them, dZ backpropagated through the trunk by autograd, and each head's own loss gradient times its loss
// weight; with 1, 2 and 3 threads (shards that do not divide the batch). Every method also trains 20 steps in
// both spaces, and the alias mgda_ub trains exactly as mgda with space: representation.
#include <torch/torch.h>

#include "mtl/engine/parallel_engine.h"
#include "mtl/run/assembler.h"
#include "mtl/run/trainer.h"
#include "random_batch.h"
#include "test_util.h"
#include "weighting/weighting_test_util.h"

namespace {

const std::vector<std::string> kMethods{
    "mgda",   "mgda, normalization: none", "pcgrad", "gradvac", "graddrop", "cagrad", "imtl",
    "imtl, part: gradient", "nash_mtl", "aligned_mtl", "upgrad", "dualproj", "config", "db_mtl, beta: 0",
    "gradnorm"};

mtl::Run make_run(const std::string& backbone) {
  std::string yaml = "data: {type: multi_fashion}\nmodel: {backbone: " + backbone + "}\n" +
                     "tasks:\n  left: {label: left}\n  right: {label: right}\ntrainer: {threads: 1}\n";
  return mtl::assemble(mtl::Config::from_string(yaml, "r.yaml"));
}

mtl::Batch random_batch(int64_t n) {
  torch::manual_seed(7);
  mtl::Batch b = mtl_test::random_multi_fashion_batch(n);
  b.inputs["image"] = b.inputs["image"].to(torch::kDouble);
  return b;
}

struct Reference {
  std::vector<at::Tensor> grads;  // per parameter of the model, in parameters() order
  std::vector<double> weights;    // the method's effective weights
};

// Plain autograd on the whole batch in one piece: R = [dL_t/dZ], dZ = method(R), trunk <- J^T dZ, heads <- w_t dL_t.
Reference reference(mtl::Run& ex, const mtl::Batch& batch, const std::string& method) {
  auto w = mtl_test::make_weighting("{method: " + method + ", space: representation}", 2);
  w->set_shared_parameters(mtl::trainable_shared_parameters(*ex.model));
  mtl::ModelOutput out = ex.model->forward(batch.inputs);
  std::vector<at::Tensor> losses = mtl::task_losses(ex.tasks, out.outputs, batch);
  std::vector<double> loss_values;
  std::vector<at::Tensor> rows;
  for (auto& l : losses) {
    loss_values.push_back(l.item<double>());
    rows.push_back(torch::autograd::grad({l}, {out.features}, {}, true)[0].reshape(-1));
  }
  const mtl::StepContext ctx{};
  std::vector<double> head_weights = w->loss_weights(loss_values, ctx);
  at::Tensor dz = w->combine(at::stack(rows), loss_values, ctx);
  std::map<const void*, at::Tensor> by_param;
  auto shared = ex.model->shared_parameters();
  auto trunk = torch::autograd::grad({out.features}, shared, {dz.view(out.features.sizes())}, true);
  for (size_t k = 0; k < shared.size(); ++k) by_param[shared[k].unsafeGetTensorImpl()] = trunk[k];
  for (size_t t = 0; t < 2; ++t) {
    auto head = ex.model->head_parameters(t);
    auto g = torch::autograd::grad({losses[t] * head_weights[t]}, head, {}, true);
    for (size_t k = 0; k < head.size(); ++k) by_param[head[k].unsafeGetTensorImpl()] = g[k];
  }
  Reference ref;
  for (auto& p : ex.model->parameters()) ref.grads.push_back(by_param.at(p.unsafeGetTensorImpl()));
  ref.weights = w->last_weights();
  return ref;
}

}  // namespace

TEST(RepresentationSpace, EveryMethodMatchesTheFullBatchAutogradReference) {
  mtl::Run ex = make_run("{type: lenet, channels: [4, 6], out_features: 12}");
  ex.model->to(at::kDouble);
  const mtl::Batch batch = random_batch(11);
  for (const std::string& method : kMethods) {
    const Reference ref = reference(ex, batch, method);
    for (int threads : {1, 2, 3}) {
      const std::string what = method + ", threads " + std::to_string(threads);
      auto w = mtl_test::make_weighting("{method: " + method + ", space: representation}", 2);
      w->set_shared_parameters(mtl::trainable_shared_parameters(*ex.model));
      auto engine = mtl::make_parallel_engine(ex.model, ex.tasks, *w, {threads, 1, 0}, ex.make_model);
      mtl::StepResult r = engine->compute_gradients(batch, {});
      size_t k = 0;
      for (auto& p : ex.model->parameters()) {
        ASSERT_TRUE(p.grad().defined()) << what;
        const double scale = std::max(1e-300, ref.grads[k].norm().item<double>());
        EXPECT_LE((p.grad() - ref.grads[k]).norm().item<double>() / scale, 1e-6) << what << ", parameter " << k;
        ++k;
      }
      ASSERT_EQ(r.weights.size(), ref.weights.size()) << what;
      for (size_t t = 0; t < r.weights.size(); ++t) EXPECT_NEAR(r.weights[t], ref.weights[t], 1e-6) << what;
    }
  }
}

namespace {

// `steps` steps of MultiFashion (400 examples, batch 20) with `weighting`; returns the run and its losses.
std::pair<mtl::Run, std::vector<double>> train_steps(const std::string& weighting, int steps, mtl_test::TempDir& dir,
                                                     const std::string& name) {
  std::string yaml = "data: {type: multi_fashion, train_size: 400, test_size: 40, cache_dir: '" + dir.file("c") +
                     "'}\nmodel: {backbone: lenet}\ntasks: {left: {label: left}, right: {label: right}}\n" +
                     "weighting: " + weighting + "\noptimizer: {type: sgd, lr: 0.05, momentum: 0.9}\n" +
                     "trainer: {epochs: 1, max_steps: " + std::to_string(steps) + ", batch_size: 20, threads: 1, " +
                     "eval_interval: 0, run_dir: '" + dir.file(name) + "'}\nbaselines: none\n";
  mtl::Run ex = mtl::assemble(mtl::Config::from_string(yaml, "t.yaml"));
  struct Losses : mtl::TrainObserver {
    std::vector<double> total;
    void step_done(const mtl::TrainPosition&, const mtl::StepResult& r) override {
      total.push_back(r.losses[0] + r.losses[1]);  // unweighted: the methods' weights differ in scale
    }
  } losses;
  mtl::TrainRunOptions options;
  options.progress = false;
  options.observers = {&losses};
  mtl::train(ex, options);
  return {std::move(ex), losses.total};
}

}  // namespace

// 20 SGD steps of every method in both spaces: every step finite, the weights of the log finite, and the mean
// summed task loss of the last five steps below that of the first five (the model learns in both spaces).
TEST(RepresentationSpace, EveryMethodTrainsTwentyStepsInBothSpaces) {
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  mtl_test::TempDir dir("repr_train");
  int n = 0;
  for (const std::string& method : kMethods)
    for (const std::string space : {"parameters", "representation"}) {
      const std::string yaml = "{method: " + method + ", space: " + space + "}";
      auto [ex, losses] = train_steps(yaml, 20, dir, "r" + std::to_string(n++));
      ASSERT_EQ(losses.size(), 20u) << yaml;
      double first = 0, last = 0;
      for (int i = 0; i < 5; ++i) first += losses[i] / 5, last += losses[15 + i] / 5;
      for (double l : losses) EXPECT_TRUE(std::isfinite(l)) << yaml;
      EXPECT_LT(last, first) << yaml;
      for (double w : ex.weighting->last_weights()) EXPECT_TRUE(std::isfinite(w)) << yaml;
    }
}

// mgda_ub is the old name of mgda in representation space: the same run, bitwise.
TEST(RepresentationSpace, MgdaUbAliasGivesTheSameRunAsMgdaInRepresentationSpace) {
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  mtl_test::TempDir dir("repr_alias");
  auto [a, la] = train_steps("{method: mgda_ub}", 10, dir, "alias");
  auto [b, lb] = train_steps("{method: mgda, space: representation}", 10, dir, "space");
  EXPECT_EQ(la, lb);
  auto pb = b.model->named_parameters();
  for (auto& kv : a.model->named_parameters()) EXPECT_TRUE(torch::equal(kv.value(), pb[kv.key()])) << kv.key();
}
