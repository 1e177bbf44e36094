#include "mtl/engine/parallel_engine.h"

#include <chrono>
#include <cmath>
#include <functional>
#include <unordered_map>

#include "mtl/core/random.h"
#include "mtl/core/threads.h"
#include "mtl/engine/replicas.h"

namespace mtl {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

int64_t numel(const std::vector<at::Tensor>& ts) {
  int64_t n = 0;
  for (const auto& t : ts) n += t.numel();
  return n;
}

// One worker's shard of a step: its passes write into `buffers` (handed to the reducer) and keep the graph
// between passes. Head gradients of the gradient-based paths are unweighted here; the engine scales the
// reduced ones by the heads' loss weights (exact: the weights are the same for every shard).
struct Worker {
  MultiTaskModel model{nullptr};  // the shared model, or a replica aliasing its parameters
  std::vector<at::Tensor> params;  // its trainable parameters, in the engine's order
  std::vector<at::Tensor> shared;  // its trainable shared (trunk) parameters
  std::unordered_map<const void*, size_t> index;  // params[index[impl]] is the parameter
  WorkerBuffers buffers;
  std::vector<at::Tensor> losses;  // per task, with graph (forward -> backward passes)
  at::Tensor features;             // the shard's shared representation (representation space)
  at::Tensor rows;                 // [T, P] per-task trunk gradients, reused from step to step
  Precision precision = Precision::kFloat32;  // of the forward pass
  double share = 0.0;              // shard rows / batch rows
  double seconds = 0.0;            // time spent on this step's shard

  void bind(MultiTaskModel m);
  void forward(const std::vector<TaskSpec>& tasks, const Batch& shard, uint64_t seed, const StepContext& ctx,
               int index, bool keep_features);
  void backward_weighted(const std::vector<double>& weights);
  void task_rows(bool heads, bool keep_graph);
  void backward_per_task() {
    task_rows(/*heads=*/true, /*keep_graph=*/false);
    losses.clear();
  }
  void representation_pass();
  void trunk_backward(const at::Tensor& dz);

 private:
  int64_t last_present() const {
    int64_t last = -1;
    for (size_t t = 0; t < losses.size(); ++t)
      if (losses[t].defined()) last = static_cast<int64_t>(t);
    return last;
  }
  // Task t's gradients of `inputs`; with `heads`, also of its head's parameters, which go to buffers.grads.
  std::vector<at::Tensor> task_pass(size_t t, std::vector<at::Tensor> inputs, bool retain, bool heads = true);
};

void Worker::bind(MultiTaskModel m) {
  model = std::move(m);
  params = trainable_parameters(*model);
  shared = model->shared_parameters();
  index = parameter_positions(params);
}

void Worker::forward(const std::vector<TaskSpec>& tasks, const Batch& shard, uint64_t seed, const StepContext& ctx,
                     int index, bool keep_features) {
  const size_t T = tasks.size();
  losses.assign(T, at::Tensor());
  buffers.losses.assign(T, 0.0);
  buffers.present.assign(T, false);
  buffers.grads.clear();
  buffers.task_rows = buffers.rep_rows = at::Tensor();
  buffers.gates.clear();
  if (share == 0.0) return;
  auto start = Clock::now();
  torch::AutoGradMode grad_mode(true);
  // Dropout masks depend on (seed, step, shard) only: reproducible for a given thread count.
  ThreadGeneratorScope rng(StepInfo{seed, ctx.step, ctx.epoch}, static_cast<uint64_t>(index));
  ModelOutput out;
  {
    PrecisionScope autocast(precision);  // the graph records the casts: backward needs no scope
    out = model->forward(shard.inputs);
  }
  losses = task_losses(tasks, out, shard);
  if (keep_features) features = out.features;
  for (const at::Tensor& g : out.gates) {  // this shard's part of the batch's mean gate weights
    at::Tensor sums = g.detach().sum(0).to(at::kDouble).mul_(share / double(shard.size)).contiguous();
    buffers.gates.insert(buffers.gates.end(), sums.data_ptr<double>(), sums.data_ptr<double>() + sums.numel());
  }
  for (size_t t = 0; t < T; ++t)
    if (losses[t].defined()) {
      buffers.present[t] = true;
      buffers.losses[t] = losses[t].item<double>() * share;
    }
  seconds += seconds_since(start);
}

// kWeightedLoss: the gradient of sum_t w_t L_t (this shard's share) for every trainable parameter.
void Worker::backward_weighted(const std::vector<double>& weights) {
  if (last_present() < 0) return;
  auto start = Clock::now();
  torch::AutoGradMode grad_mode(true);
  at::Tensor objective;
  for (size_t t = 0; t < losses.size(); ++t) {
    if (!losses[t].defined()) continue;
    at::Tensor term = losses[t] * (weights[t] * share);
    objective = objective.defined() ? objective + term : term;
  }
  buffers.grads = torch::autograd::grad({objective}, params, {}, /*retain_graph=*/false,
                                        /*create_graph=*/false, /*allow_unused=*/true);
  losses.clear();  // frees the graph
  seconds += seconds_since(start);
}

std::vector<at::Tensor> Worker::task_pass(size_t t, std::vector<at::Tensor> inputs, bool retain, bool heads) {
  const size_t n = inputs.size();
  std::vector<at::Tensor> head = heads ? model->head_parameters(t) : std::vector<at::Tensor>();
  inputs.insert(inputs.end(), head.begin(), head.end());
  auto g = torch::autograd::grad({losses[t] * share}, inputs, {}, retain, /*create_graph=*/false,
                                 /*allow_unused=*/true);
  for (size_t j = 0; j < head.size(); ++j)
    if (g[n + j].defined()) buffers.grads[index.at(head[j].unsafeGetTensorImpl())] = g[n + j];
  g.resize(n);
  return g;
}

// One backward pass per present task gives the task's trunk row (written into the reused [T, P] matrix;
// absent tasks' rows are zero) and, with `heads`, its head's gradient. kSharedTaskGrads: T passes, no extra
// pass for the heads. Gradient diagnostics of loss-based methods: the rows only, keeping the graph for the
// weighted backward pass that follows (autograd::grad writes no .grad: the step's update is unchanged).
void Worker::task_rows(bool heads, bool keep_graph) {
  const int64_t last = last_present();
  if (last < 0) return;
  auto start = Clock::now();
  torch::AutoGradMode grad_mode(true);
  const int64_t T = static_cast<int64_t>(losses.size()), P = numel(shared);
  if (heads) buffers.grads.assign(params.size(), at::Tensor());
  if (!rows.defined() || rows.size(0) != T || rows.size(1) != P) rows = at::empty({T, P}, shared[0].options());
  for (size_t t = 0; t < losses.size(); ++t) {
    at::Tensor row = rows[static_cast<int64_t>(t)];
    if (!losses[t].defined()) {
      row.zero_();
      continue;
    }
    auto g = task_pass(t, shared, keep_graph || static_cast<int64_t>(t) != last, heads);
    int64_t pos = 0;
    for (size_t k = 0; k < shared.size(); ++k) {
      at::Tensor slot = row.narrow(0, pos, shared[k].numel());
      if (g[k].defined()) slot.view(g[k].sizes()).copy_(g[k]);
      else slot.zero_();
      pos += shared[k].numel();
    }
  }
  buffers.task_rows = rows;
  seconds += seconds_since(start);
}

// kRepresentationGrads, first pass: per task, one backward pass through its head gives dL_t/dZ for this
// shard's rows of the representation Z and the head's own gradient.
void Worker::representation_pass() {
  if (share == 0.0 || !features.defined() || !features.requires_grad()) return;
  auto start = Clock::now();
  torch::AutoGradMode grad_mode(true);
  buffers.grads.assign(params.size(), at::Tensor());
  // bf16 representations (trainer.precision) give float32 rows: the weighting methods work in float32 at least.
  const at::ScalarType rows_type = features.scalar_type() == at::kBFloat16 ? at::kFloat : features.scalar_type();
  at::Tensor out = at::zeros({static_cast<int64_t>(losses.size()), features.numel()}, features.options().dtype(rows_type));
  for (size_t t = 0; t < losses.size(); ++t) {
    if (!losses[t].defined()) continue;
    auto g = task_pass(t, {features}, /*retain=*/true);
    if (g[0].defined()) out[static_cast<int64_t>(t)].copy_(g[0].reshape(-1));
  }
  buffers.rep_rows = out;
  seconds += seconds_since(start);
}

// kRepresentationGrads, second pass: one backward pass through the trunk with this shard's part of the
// combined representation gradient dZ.
void Worker::trunk_backward(const at::Tensor& dz) {
  auto start = Clock::now();
  if (buffers.rep_rows.defined()) {
    torch::AutoGradMode grad_mode(true);
    auto g = torch::autograd::grad({features}, shared, {dz.view(features.sizes()).to(features.scalar_type())}, /*retain_graph=*/false,
                                   /*create_graph=*/false, /*allow_unused=*/true);
    for (size_t k = 0; k < shared.size(); ++k) buffers.grads[index.at(shared[k].unsafeGetTensorImpl())] = g[k];
  }
  losses.clear();
  features = at::Tensor();
  seconds += seconds_since(start);
}

class ParallelEngine : public GradientEngine {
 public:
  ParallelEngine(MultiTaskModel model, const std::vector<TaskSpec>& tasks, Weighting& weighting,
                 EngineOptions options, const ModelFactory& make_replica, std::unique_ptr<GradientReducer> reducer)
      : model_(std::move(model)), tasks_(tasks), weighting_(weighting), options_(options),
        pool_(options.threads, [n = options.intra_op_threads](int) { set_intra_op_threads_for_this_thread(n); }),
        planner_(options.threads, options.dynamic_balance),
        reducer_(reducer                ? std::move(reducer)
                 : options.make_reducer ? options.make_reducer()
                                        : std::make_unique<OrderedReducer>()) {
    reducer_->use_pool(&pool_);
    workers_.resize(options_.threads);
    const bool replicas = !model_->buffers().empty() && options_.threads > 1;
    for (auto& w : workers_) {
      w.precision = options_.precision;
      if (replicas) {
        TORCH_CHECK(make_replica, "a model with buffers (BatchNorm) needs replicas for parallel training");
        MultiTaskModel replica = make_replica();
        alias_parameters(model_, replica);
        w.bind(replica);
      } else {
        w.bind(model_);
      }
    }
    params_ = trainable_parameters(*model_);
    shared_ = model_->shared_parameters();
    gate_sizes_ = model_->architecture().gate_sizes();
  }

  // One pool run for loss-based methods with weights known in advance and for parameter-space gradient
  // methods (forward and the T backward passes of each shard in one go); two for loss-dependent weights and
  // for representation space (the combined dZ needs every shard's representation gradients).
  StepResult compute_gradients(const Batch& batch, const StepContext& ctx) override {
    const std::vector<int64_t> off = planner_.offsets(batch.size);
    const GradientKind kind = weighting_.needs();
    StepResult r;
    r.step = ctx.step;
    r.examples = batch.whole_size();
    const bool fused = kind == GradientKind::kWeightedLoss && weighting_.weights_ignore_step_losses();
    diagnose_ = is_diagnostic_step(ctx.step, options_.diagnostics_every) && !shared_.empty();
    const bool extra_rows = diagnose_ && kind == GradientKind::kWeightedLoss;  // T extra backward passes
    if (fused) r.weights = loss_weights_for_step(weighting_, {}, labels_present(tasks_, batch), ctx);
    std::vector<Batch> shards;
    for (size_t i = 0; i < workers_.size(); ++i) {
      shards.push_back(batch.slice(off[i], off[i + 1]));
      workers_[i].share = double(off[i + 1] - off[i]) / double(batch.whole_size());
      workers_[i].seconds = 0.0;
      workers_[i].model->train(model_->is_training());
    }
    run_workers([&](int i) {
      Worker& w = workers_[i];
      w.forward(tasks_, shards[i], options_.seed, ctx, options_.first_shard + i,
                kind == GradientKind::kRepresentationGrads);
      if (extra_rows) w.task_rows(/*heads=*/false, /*keep_graph=*/true);
      if (fused) w.backward_weighted(r.weights);
      if (kind == GradientKind::kSharedTaskGrads) w.backward_per_task();
      if (kind == GradientKind::kRepresentationGrads) w.representation_pass();
    });
    r.losses.assign(tasks_.size(), 0.0);
    r.present.assign(tasks_.size(), false);
    reducer_->reduce_losses(buffer_list(), r.losses, r.present);
    reduce_gates(r);
    if (extra_rows) diagnose(reducer_->reduce_task_rows(buffer_list()), r, false);
    std::vector<double> head_weights;
    if (kind != GradientKind::kWeightedLoss) {
      head_weights = loss_weights_for_step(weighting_, r.losses, r.present, ctx);
      r.weights = head_weights;
    } else if (!fused) {
      r.weights = loss_weights_for_step(weighting_, r.losses, r.present, ctx);
      run_workers([&](int i) { workers_[i].backward_weighted(r.weights); });
    }
    if (kind == GradientKind::kRepresentationGrads) representation_step(r, ctx);
    std::vector<double> seconds;
    for (const auto& w : workers_) seconds.push_back(w.seconds);
    planner_.record(off, seconds);
    reducer_->reduce_gradients(buffer_list(), params_);
    if (kind == GradientKind::kSharedTaskGrads) set_shared_gradients(r, ctx);
    if (kind != GradientKind::kWeightedLoss) scale_head_gradients(head_weights);
    for (size_t t = 0; t < tasks_.size(); ++t)
      if (r.present[t]) r.total_loss += r.weights[t] * r.losses[t];
    if (r.diagnostics) r.diagnostics->combined_norm = trunk_gradient_norm();
    average_buffers();
    return r;
  }

  std::vector<double> batch_losses(const Batch& batch, const StepContext& ctx) override;

 private:
  // One worker runs on the calling thread: no hand-off, and its tensors come from the main malloc arena, which
  // keeps freed memory (mtl/core/allocator.h); a pool thread's arena returns large blocks to the system, so
  // their pages fault in again every step (SOTU Transformer, one worker on a pool thread: 16,500 faults per step;
  // with every thread on the main arena: 6,700).
  void run_workers(const std::function<void(int)>& fn) {
    if (workers_.size() > 1) return pool_.run(fn);
    IntraOpThreadsScope threads(options_.intra_op_threads);
    fn(0);
  }

  WorkerBufferList buffer_list() const {
    WorkerBufferList out;
    for (const auto& w : workers_) out.push_back(&w.buffers);
    return out;
  }

  // The method combines the T x (B*D) representation gradients; each worker backpropagates its rows of the
  // combined dZ through the trunk. r.weights becomes the method's effective weights.
  void representation_step(StepResult& r, const StepContext& ctx) {
    at::Tensor R = reducer_->gather_representation_grads(buffer_list());
    if (!R.defined()) return;
    if (diagnose_) diagnose(R, r, true);
    at::Tensor dz;
    {
      // R is small (T x BD): one thread is enough, and OpenMP threads that BLAS would wake (OpenBLAS threads
      // dot products above 10k entries) keep spinning into the next pool run, taking the workers' cores.
      IntraOpThreadsScope serial(1);
      dz = combine_for_step(weighting_, R, r.losses, r.present, ctx, r.weights).to(R.scalar_type());
    }
    std::vector<int64_t> begin(workers_.size(), 0);
    int64_t pos = reducer_->representation_offset();
    for (size_t i = 0; i < workers_.size(); ++i) {
      begin[i] = pos;
      if (workers_[i].buffers.rep_rows.defined()) pos += workers_[i].buffers.rep_rows.size(1);
    }
    run_workers([&](int i) {
      const at::Tensor& rows = workers_[i].buffers.rep_rows;
      workers_[i].trunk_backward(rows.defined() ? dz.narrow(0, begin[i], rows.size(1)) : at::Tensor());
    });
  }

  // The weighting method combines the reduced T x P matrix into the trunk's gradient; r.weights becomes its
  // effective task weights.
  void set_shared_gradients(StepResult& r, const StepContext& ctx) {
    at::Tensor G = reducer_->reduce_task_rows(buffer_list());
    if (!G.defined()) return;
    if (diagnose_) diagnose(G, r, false);  // before combine(), which may work in G
    at::Tensor combined = combine_for_step(weighting_, G, r.losses, r.present, ctx, r.weights).to(G.scalar_type());
    int64_t pos = 0;
    for (auto& p : shared_) {
      p.mutable_grad() = combined.narrow(0, pos, p.numel()).view(p.sizes());
      pos += p.numel();
    }
  }

  // Gradient diagnostics of the reduced per-task rows (trunk parameters, or the shared representation).
  void diagnose(const at::Tensor& rows, StepResult& r, bool representation) {
    if (!rows.defined()) return;
    IntraOpThreadsScope serial(1);  // T x T: see representation_step
    r.diagnostics = diagnose_task_gradients(rows, r.present);
    r.diagnostics->representation = representation;
  }

  // |d| of the trunk gradient the optimizer gets (every shared parameter's reduced, combined .grad).
  double trunk_gradient_norm() const {
    double sum = 0.0;
    for (const auto& p : shared_)
      if (p.grad().defined()) sum += p.grad().to(at::kDouble).pow(2).sum().item<double>();
    return std::sqrt(sum);
  }

  // Heads of the gradient-based paths: the reduced gradient of L_t times the head's loss weight.
  void scale_head_gradients(const std::vector<double>& weights) {
    for (size_t t = 0; t < tasks_.size() && t < weights.size(); ++t) {
      if (weights[t] == 1.0) continue;
      for (auto& p : model_->head_parameters(t))
        if (p.grad().defined()) p.mutable_grad() = p.grad() * weights[t];
    }
  }

  void average_buffers();

  // StepResult::gates: the workers' gate sums reduced (across processes too), split per task.
  void reduce_gates(StepResult& r) { r.gates = reduce_gate_means(*reducer_, buffer_list(), gate_sizes_); }

  MultiTaskModel model_;
  const std::vector<TaskSpec>& tasks_;
  Weighting& weighting_;
  EngineOptions options_;
  WorkerPool pool_;
  ShardPlanner planner_;
  std::unique_ptr<GradientReducer> reducer_;
  std::vector<Worker> workers_;
  std::vector<at::Tensor> params_, shared_;
  bool diagnose_ = false;            // this step is a diagnostic one (EngineOptions::diagnostics_every)
  std::vector<int64_t> gate_sizes_;  // per task: experts its gate mixes (expert architectures), else empty
};

// Running statistics: the model gets the mean over workers (and over processes, through the reducer); every
// replica restarts from it.
void ParallelEngine::average_buffers() {
  std::vector<MultiTaskModel> replicas;
  if (!workers_.empty() && workers_[0].model.get() != model_.get())
    for (auto& w : workers_) replicas.push_back(w.model);
  average_replica_buffers(model_, replicas, *reducer_);
}

std::vector<double> ParallelEngine::batch_losses(const Batch& batch, const StepContext& ctx) {
  const int n = options_.threads;
  const size_t T = tasks_.size();
  std::vector<int64_t> off = shard_offsets(batch.size, n);
  const double B = static_cast<double>(batch.whole_size());
  // Evaluation must not move BatchNorm running statistics: keep and restore every worker's buffers.
  std::vector<std::vector<at::Tensor>> saved(n);
  for (int i = 0; i < n; ++i)
    for (const auto& b : workers_[i].model->buffers()) saved[i].push_back(b.clone());
  std::vector<std::vector<double>> values(n, std::vector<double>(T, 0.0));
  for (auto& w : workers_) w.model->train(model_->is_training());
  run_workers([&](int i) {
    if (off[i + 1] == off[i]) return;
    at::NoGradGuard no_grad;
    ThreadGeneratorScope rng(StepInfo{options_.seed, ctx.step, ctx.epoch}, static_cast<uint64_t>(options_.first_shard + i));
    Batch shard = batch.slice(off[i], off[i + 1]);
    ModelOutput out;
    {
      PrecisionScope autocast(options_.precision);
      out = workers_[i].model->forward(shard.inputs);
    }
    std::vector<at::Tensor> losses = task_losses(tasks_, out, shard);
    for (size_t t = 0; t < T; ++t)
      if (losses[t].defined()) values[i][t] = losses[t].item<double>() * double(off[i + 1] - off[i]) / B;
  });
  for (int i = 0; i < n; ++i) {
    size_t k = 0;
    at::NoGradGuard no_grad;
    for (auto& b : workers_[i].model->buffers()) b.copy_(saved[i][k++]);
  }
  // The reducer sums in worker order (and across processes).
  std::vector<WorkerBuffers> parts(n);
  WorkerBufferList list;
  for (int i = 0; i < n; ++i) {
    parts[i].losses = values[i];
    parts[i].present.assign(T, true);
    list.push_back(&parts[i]);
  }
  std::vector<double> out(T, 0.0);
  std::vector<bool> present(T, false);
  reducer_->reduce_losses(list, out, present);
  return out;
}

}  // namespace

std::unique_ptr<GradientEngine> make_parallel_engine(MultiTaskModel model, const std::vector<TaskSpec>& tasks,
                                                     Weighting& weighting, EngineOptions options,
                                                     ModelFactory make_replica,
                                                     std::unique_ptr<GradientReducer> reducer) {
  TORCH_CHECK(options.threads >= 1, "at least one worker thread");
  return std::make_unique<ParallelEngine>(std::move(model), tasks, weighting, options, make_replica,
                                          std::move(reducer));
}

}  // namespace mtl
