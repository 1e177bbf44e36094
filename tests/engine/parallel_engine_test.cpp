// ParallelEngine: N-thread reduced gradients equal the single-thread full-batch gradients, for every
// built-in backbone and both reduction kinds, with shard sizes that do not divide the batch.
#include "mtl/engine/parallel_engine.h"

#include <torch/torch.h>

#include "mtl/core/random.h"
#include "mtl/core/threads.h"
#include "mtl/run/assembler.h"
#include "mtl/run/trainer.h"
#include "mtl/weighting/gradient_method.h"
#include "test_util.h"

namespace {

// A gradient-based strategy for tests: asks for per-task trunk gradients, keeps the matrix, sums rows.
class RecordingSum : public mtl::Weighting {
 public:
  explicit RecordingSum(size_t tasks) : T_(tasks) {}
  mtl::GradientKind needs() const override { return mtl::GradientKind::kSharedTaskGrads; }
  std::vector<double> loss_weights(const std::vector<double>&, const mtl::StepContext&) override {
    return std::vector<double>(T_, 1.0);
  }
  at::Tensor combine(const at::Tensor& G, const std::vector<double>&, const mtl::StepContext&) override {
    last_G = G.clone();
    return G.sum(0);
  }
  at::Tensor last_G;

 private:
  size_t T_;
};

// A loss-based strategy whose weights depend on this step's full-batch losses (w_t = L_t / sum L): the engine
// must run forward, reduce the losses, then backward (the two-phase path).
class LossProportional : public mtl::Weighting {
 public:
  std::vector<double> loss_weights(const std::vector<double>& losses, const mtl::StepContext&) override {
    EXPECT_FALSE(losses.empty());
    double sum = 0;
    for (double l : losses) sum += l;
    std::vector<double> w;
    for (double l : losses) w.push_back(l / sum);
    return w;
  }
};

// A representation-space strategy for tests: keeps the T x (B*D) matrix and combines its rows with weights
// that depend on it, w_t = |R_t|^2 / sum_s |R_s|^2.
class RecordingRepresentation : public mtl::GradientWeighting {
 public:
  RecordingRepresentation() { set_space(mtl::GradientSpace::kRepresentation); }
  at::Tensor combine(const at::Tensor& R, const std::vector<double>&, const mtl::StepContext&) override {
    last_R = R.clone();
    at::Tensor M = mtl::gram_matrix(R);
    at::Tensor w = M.diagonal() / M.trace();
    set_last_weights(w);
    return mtl::weighted_rows(R, w);
  }
  at::Tensor last_R;
};

// Two class tasks and one real-valued task on random images; `backbone` is a YAML component.
mtl::Run make(const std::string& backbone) {
  std::string yaml = "data: {type: multi_fashion}\nmodel: {backbone: " + backbone + "}\n" +
                     "tasks:\n  left: {label: left, weight: 1.0}\n  right: {label: right, weight: 0.5}\n" +
                     "trainer: {threads: 1}\n";
  return mtl::assemble(mtl::Config::from_string(yaml, "p.yaml"));
}

mtl::Batch random_batch(int64_t n) {
  torch::manual_seed(42);
  mtl::Batch b;
  b.size = n;
  b.inputs["image"] = torch::randn({n, 1, 36, 36});
  b.targets["left"] = torch::randint(0, 10, {n}, torch::kLong);
  b.targets["right"] = torch::randint(0, 10, {n}, torch::kLong);
  return b;
}

std::vector<at::Tensor> grads_of(mtl::MultiTaskModel& m) {
  std::vector<at::Tensor> g;
  for (auto& p : m->parameters()) g.push_back(p.grad().defined() ? p.grad().clone() : at::zeros_like(p));
  return g;
}

void expect_close(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b, const std::string& what,
                  double tolerance) {
  ASSERT_EQ(a.size(), b.size());
  // Relative error of each parameter's gradient as a vector: ||a - b|| / ||b||.
  for (size_t k = 0; k < a.size(); ++k) {
    double scale = std::max(1e-300, b[k].to(at::kDouble).norm().item<double>());
    double err = (a[k].to(at::kDouble) - b[k].to(at::kDouble)).norm().item<double>();
    EXPECT_LE(err / scale, tolerance) << what << ": parameter " << k << " relative error " << err / scale;
  }
}

}  // namespace

TEST(ParallelEngine, ShardsCoverTheBatch) {
  EXPECT_EQ(mtl::shard_offsets(10, 3), (std::vector<int64_t>{0, 4, 7, 10}));
  EXPECT_EQ(mtl::shard_offsets(2, 4), (std::vector<int64_t>{0, 1, 2, 2, 2}));
}

// In float64 the engine's sharding, shard-size weighting and reduction must reproduce the full-batch
// gradient to rounding (1e-10); in float32, LibTorch's kernels round shard sums differently from the
// full-batch sum (measured up to 1.1e-5 on the BatchNorm biases of resnet, whose gradients cancel), so the
// production-precision check allows 2e-5.
TEST(ParallelEngine, WeightedLossGradientsMatchFullBatchForEveryBackbone) {
  for (auto dtype : {at::kDouble, at::kFloat}) {
    const double tolerance = dtype == at::kDouble ? 1e-10 : 2e-5;
    for (std::string bb : {"{type: mlp, hidden: [16]}", "lenet", "{type: resnet, channels: [4, 8], norm: none}",
                           "{type: resnet, channels: [4, 8], norm: batch}"}) {
      bool batch_norm = bb.find("norm: batch") != std::string::npos;
      mtl::Run ex = make(bb);
      ex.model->to(dtype);
      auto make_replica = [&] {
        mtl::MultiTaskModel m = ex.make_model();
        m->to(dtype);
        return m;
      };
      // Training-mode BatchNorm normalises per shard (documented); its gradient equality holds in eval mode.
      if (batch_norm) ex.model->eval();
      mtl::Batch batch = random_batch(11);
      batch.inputs["image"] = batch.inputs["image"].to(dtype);
      auto serial = mtl::make_serial_engine(ex.model, ex.tasks, *ex.weighting);
      auto ref_result = serial->compute_gradients(batch, {});
      auto reference = grads_of(ex.model);
      for (int threads : {1, 2, 3, 4}) {
        auto engine = mtl::make_parallel_engine(ex.model, ex.tasks, *ex.weighting, {threads, 1, 0}, make_replica);
        auto r = engine->compute_gradients(batch, {});
        std::string what = bb + " " + std::string(c10::toString(dtype)) + " threads " + std::to_string(threads);
        expect_close(grads_of(ex.model), reference, what, tolerance);
        for (size_t t = 0; t < 2; ++t) EXPECT_NEAR(r.losses[t], ref_result.losses[t], 1e-6) << what;
      }
    }
  }
}

TEST(ParallelEngine, LossDependentWeightsUseTheFullBatchLosses) {
  mtl::Run ex = make("lenet");
  ex.model->to(at::kDouble);
  mtl::Batch batch = random_batch(11);
  batch.inputs["image"] = batch.inputs["image"].to(at::kDouble);
  LossProportional weighting;
  auto serial = mtl::make_serial_engine(ex.model, ex.tasks, weighting);
  auto ref = serial->compute_gradients(batch, {});
  auto reference = grads_of(ex.model);
  EXPECT_NE(ref.weights[0], ref.weights[1]);
  for (int threads : {2, 3}) {
    auto engine = mtl::make_parallel_engine(ex.model, ex.tasks, weighting, {threads, 1, 0}, ex.make_model);
    auto r = engine->compute_gradients(batch, {});
    for (size_t t = 0; t < 2; ++t) EXPECT_NEAR(r.weights[t], ref.weights[t], 1e-12);
    expect_close(grads_of(ex.model), reference, "loss-proportional threads " + std::to_string(threads), 1e-10);
  }
}

TEST(ParallelEngine, PerTaskTrunkGradientsMatchFullBatch) {
  mtl::Run ex = make("lenet");
  mtl::Batch batch = random_batch(13);
  // Reference: each task's full-batch gradient of the trunk, one autograd call per task.
  auto out = ex.model->forward(batch.inputs);
  auto losses = mtl::task_losses(ex.tasks, out.outputs, batch);
  auto shared = ex.model->shared_parameters();
  std::vector<at::Tensor> rows;
  for (auto& l : losses) {
    auto g = torch::autograd::grad({l}, shared, {}, true);
    std::vector<at::Tensor> flat;
    for (auto& x : g) flat.push_back(x.reshape(-1));
    rows.push_back(at::cat(flat));
  }
  at::Tensor G_ref = at::stack(rows);
  for (int threads : {1, 2, 3}) {
    RecordingSum rec(2);
    auto engine = mtl::make_parallel_engine(ex.model, ex.tasks, rec, {threads, 1, 0}, ex.make_model);
    engine->compute_gradients(batch, {});
    ASSERT_TRUE(rec.last_G.defined());
    double err = (rec.last_G - G_ref).abs().max().item<double>() / G_ref.abs().max().item<double>();
    EXPECT_LE(err, 1e-5) << "threads " << threads;
    // Trunk gradient = sum of rows; equals the EW gradient of L_left + L_right.
    int64_t pos = 0;
    at::Tensor sum = G_ref.sum(0);
    for (auto& p : shared) {
      double e = (p.grad().reshape(-1) - sum.narrow(0, pos, p.numel())).abs().max().item<double>();
      EXPECT_LE(e, 1e-5 * sum.abs().max().item<double>());
      pos += p.numel();
    }
  }
}

// Representation space: the gathered T x (B*D) matrix of dL_t/dZ equals the full batch's, the trunk gets the
// gradient of sum_t a_t L_t and each head its own task's gradient (float64: to rounding).
TEST(ParallelEngine, RepresentationGradientsMatchFullBatch) {
  for (std::string bb : {"lenet", "{type: resnet, channels: [4, 8], norm: batch}"}) {
    mtl::Run ex = make(bb);
    ex.model->to(at::kDouble);
    ex.model->eval();  // BatchNorm: batch statistics are per shard in training mode
    mtl::Batch batch = random_batch(11);
    batch.inputs["image"] = batch.inputs["image"].to(at::kDouble);
    auto out = ex.model->forward(batch.inputs);
    auto losses = mtl::task_losses(ex.tasks, out.outputs, batch);
    std::vector<at::Tensor> rows;
    for (auto& l : losses) rows.push_back(torch::autograd::grad({l}, {out.features}, {}, true)[0].reshape(-1));
    at::Tensor R = at::stack(rows);
    at::Tensor gram_ref = R.mm(R.t());
    std::vector<double> a{gram_ref[0][0].item<double>() / gram_ref.trace().item<double>(),
                          gram_ref[1][1].item<double>() / gram_ref.trace().item<double>()};
    std::vector<at::Tensor> want;
    auto trunk = torch::autograd::grad({losses[0] * a[0] + losses[1] * a[1]}, ex.model->shared_parameters(), {}, true);
    want.insert(want.end(), trunk.begin(), trunk.end());
    for (size_t t = 0; t < 2; ++t) {
      auto head = torch::autograd::grad({losses[t]}, ex.model->head_parameters(t), {}, true);
      want.insert(want.end(), head.begin(), head.end());
    }
    auto make_replica = [&] {
      mtl::MultiTaskModel m = ex.make_model();
      m->to(at::kDouble);
      return m;
    };
    for (int threads : {1, 2, 3}) {
      RecordingRepresentation rec;
      auto engine = mtl::make_parallel_engine(ex.model, ex.tasks, rec, {threads, 1, 0}, make_replica);
      auto r = engine->compute_gradients(batch, {});
      std::string what = bb + " threads " + std::to_string(threads);
      ASSERT_TRUE(rec.last_R.defined()) << what;
      ASSERT_EQ(rec.last_R.sizes(), R.sizes()) << what;
      EXPECT_LE((rec.last_R - R).abs().max().item<double>(), 1e-12 * R.abs().max().item<double>()) << what;
      for (size_t t = 0; t < 2; ++t) EXPECT_NEAR(r.weights[t], a[t], 1e-10) << what;
      expect_close(grads_of(ex.model), want, what, 1e-10);
    }
  }
}

// FAMO's second look at the batch: the reduced no-grad losses equal the full-batch losses, and BatchNorm
// running statistics do not move.
TEST(ParallelEngine, BatchLossesAreFullBatchLossesAndLeaveBuffersAlone) {
  mtl::Run ex = make("{type: resnet, channels: [4, 8], norm: batch}");
  ex.model->to(at::kDouble);
  mtl::Batch batch = random_batch(11);
  batch.inputs["image"] = batch.inputs["image"].to(at::kDouble);
  ex.model->eval();  // reference in eval mode: no per-shard batch statistics
  auto out = ex.model->forward(batch.inputs);
  auto ref = mtl::task_losses(ex.tasks, out.outputs, batch);
  std::vector<at::Tensor> before;
  for (auto& b : ex.model->buffers()) before.push_back(b.clone());
  auto make_replica = [&] {
    mtl::MultiTaskModel m = ex.make_model();
    m->to(at::kDouble);
    return m;
  };
  for (int threads : {1, 2, 3}) {
    auto engine = mtl::make_parallel_engine(ex.model, ex.tasks, *ex.weighting, {threads, 1, 0}, make_replica);
    auto got = engine->batch_losses(batch, {});
    for (size_t t = 0; t < 2; ++t) EXPECT_NEAR(got[t], ref[t].item<double>(), 1e-12) << "threads " << threads;
  }
  auto serial = mtl::make_serial_engine(ex.model, ex.tasks, *ex.weighting);
  auto got = serial->batch_losses(batch, {});
  for (size_t t = 0; t < 2; ++t) EXPECT_NEAR(got[t], ref[t].item<double>(), 1e-12) << "serial";
  // Training mode: the forward pass would update running statistics; batch_losses restores them.
  ex.model->train();
  auto engine = mtl::make_parallel_engine(ex.model, ex.tasks, *ex.weighting, {2, 1, 0}, make_replica);
  engine->batch_losses(batch, {});
  size_t k = 0;
  for (auto& b : ex.model->buffers()) EXPECT_TRUE(torch::equal(b, before[k++]));
}

TEST(ParallelEngine, WorkerExceptionSurfacesAndTheEngineStaysUsable) {
  mtl::Run ex = make("{type: mlp, hidden: [8]}");
  auto tasks = ex.tasks;
  auto good = tasks[0].loss;
  tasks[0].loss = [good](const at::Tensor& out, const at::Tensor& target) {
    if (out.size(0) == 3) throw std::runtime_error("shard of three rejected");
    return good(out, target);
  };
  auto engine = mtl::make_parallel_engine(ex.model, tasks, *ex.weighting, {3, 1, 0}, ex.make_model);
  try {
    engine->compute_gradients(random_batch(10), {});  // shards 4, 3, 3
    FAIL() << "expected the worker's exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "shard of three rejected");
  }
  EXPECT_NO_THROW(engine->compute_gradients(random_batch(12), {}));  // shards of four
}

TEST(ParallelEngine, BatchNormRunningStatsAreTheMeanOverShards) {
  mtl::Run ex = make("{type: resnet, channels: [4], norm: batch}");
  mtl::Batch batch = random_batch(8);
  auto engine = mtl::make_parallel_engine(ex.model, ex.tasks, *ex.weighting, {2, 1, 0}, ex.make_model);
  engine->compute_gradients(batch, {});
  // Reference: the stem BatchNorm's running mean after one update from each half, averaged.
  auto stem = ex.model->backbone()->named_children()["stem"];
  auto conv = std::dynamic_pointer_cast<torch::nn::Conv2dImpl>(stem);
  ASSERT_TRUE(conv);
  torch::NoGradGuard ng;
  at::Tensor x = batch.inputs["image"];
  at::Tensor m0 = conv->forward(x.slice(0, 0, 4)).mean({0, 2, 3});
  at::Tensor m1 = conv->forward(x.slice(0, 4, 8)).mean({0, 2, 3});
  at::Tensor expected = 0.1 * (m0 + m1) / 2;  // momentum 0.1 from a zero start
  at::Tensor got = ex.model->backbone()->named_buffers()["stem_bn.running_mean"];
  EXPECT_TRUE(torch::allclose(got, expected, 1e-5, 1e-6)) << got << expected;
}

TEST(ParallelEngine, DropoutMasksComeFromTheThreadsOwnStream) {
  at::Tensor x = torch::ones({1000});
  at::Tensor a, b, c;
  {
    mtl::ThreadGeneratorScope s(mtl::make_generator(1, 2, 3));
    a = mtl::dropout(x, 0.5, true);
  }
  {
    mtl::ThreadGeneratorScope s(mtl::make_generator(1, 2, 3));
    b = mtl::dropout(x, 0.5, true);
  }
  {
    mtl::ThreadGeneratorScope s(mtl::make_generator(1, 2, 4));
    c = mtl::dropout(x, 0.5, true);
  }
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::equal(a, c));
  EXPECT_NEAR(a.mean().item<double>(), 1.0, 0.1);  // inverted dropout keeps the expectation
  EXPECT_TRUE(torch::equal(mtl::dropout(x, 0.5, false), x));
}

// With dropout in trunk and head, two workers and two loader threads: still bitwise reproducible.
TEST(ParallelEngine, SameSeedSameThreadsGivesBitwiseIdenticalWeights) {
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  mtl_test::TempDir dir("parallel_det");
  auto run = [&](const std::string& name) {
    std::string yaml = "data: {type: multi_fashion, train_size: 400, test_size: 50, cache_dir: '" + dir.file("c") +
                       "'}\nmodel: {backbone: {type: lenet, dropout: 0.3}}\n" +
                       "tasks: {left: {label: left, head: {hidden: [16], dropout: 0.5}}, right: {label: right}}\n" +
                       "trainer: {epochs: 1, batch_size: 37, threads: 2, loader_workers: 2, run_dir: '" +
                       dir.file(name) + "'}\n";
    mtl::Run ex = mtl::assemble(mtl::Config::from_string(yaml, "d.yaml"));
    mtl::train(ex, {"", false});
    return ex;
  };
  mtl::Run a = run("a"), b = run("b");
  auto pa = a.model->named_parameters(), pb = b.model->named_parameters();
  for (auto& kv : pa) EXPECT_TRUE(torch::equal(kv.value(), pb[kv.key()])) << kv.key();
}

// Worker threads keep their own intra-op thread count even after LibTorch's lazy per-thread setup ran
// (it used to reset them to the global count: 4 BLAS threads on 2 cores with 2 workers).
TEST(WorkerPool, IntraOpThreadCountSticksPerWorker) {
  at::set_num_threads(2);
  std::vector<int> seen(2, -1);
  mtl::WorkerPool pool(2, [](int) { mtl::set_intra_op_threads_for_this_thread(1); });
  pool.run([&](int i) {
    at::Tensor a = torch::rand({256, 256});
    (void)at::mm(a, a).sum().item<float>();
    seen[i] = at::get_num_threads();
  });
  EXPECT_EQ(seen, (std::vector<int>{1, 1}));
}

namespace {

// A reducer as one across processes would be built: it reduces like the ordered reducer (in-process), then
// applies its own step to the result (here: a record of what it saw and a factor of 2, standing in for a
// collective that sums over two identical processes).
class DoublingReducer : public mtl::OrderedReducer {
 public:
  void reduce_losses(const mtl::WorkerBufferList& w, std::vector<double>& losses, std::vector<bool>& present) override {
    OrderedReducer::reduce_losses(w, losses, present);
    for (auto& l : losses) l *= 2;
    workers_seen = w.size();
  }
  void reduce_gradients(const mtl::WorkerBufferList& w, std::vector<at::Tensor>& params) override {
    OrderedReducer::reduce_gradients(w, params);
    for (auto& p : params)
      if (p.grad().defined()) p.mutable_grad() = p.grad() * 2;
    ++gradient_calls;
  }
  size_t workers_seen = 0;
  int gradient_calls = 0;
};

}  // namespace

// The gradient-reducer seam: a reducer handed to the engine sees every worker's buffers and its result is what
// lands in .grad and in the step's losses (a c10d reducer plugs in here without touching weighting or trainer).
TEST(ParallelEngine, ReducerSeamCarriesTheReduction) {
  mtl::Run ex = make("lenet");
  ex.model->to(at::kDouble);
  mtl::Batch batch = random_batch(11);
  batch.inputs["image"] = batch.inputs["image"].to(at::kDouble);
  auto serial = mtl::make_serial_engine(ex.model, ex.tasks, *ex.weighting);
  auto ref = serial->compute_gradients(batch, {});
  auto reference = grads_of(ex.model);
  auto reducer = std::make_unique<DoublingReducer>();
  DoublingReducer* seen = reducer.get();
  auto engine = mtl::make_parallel_engine(ex.model, ex.tasks, *ex.weighting, {3, 1, 0}, ex.make_model, std::move(reducer));
  auto r = engine->compute_gradients(batch, {});
  EXPECT_EQ(seen->workers_seen, 3u);
  EXPECT_EQ(seen->gradient_calls, 1);
  for (size_t t = 0; t < 2; ++t) EXPECT_NEAR(r.losses[t], 2 * ref.losses[t], 1e-10);
  std::vector<at::Tensor> doubled;
  for (auto& g : reference) doubled.push_back(g * 2);
  expect_close(grads_of(ex.model), doubled, "doubling reducer", 1e-10);
}
