#include "mtl/engine/parallel_engine.h"

#include <chrono>
#include <unordered_map>

#include "mtl/core/random.h"
#include "mtl/core/threads.h"

namespace mtl {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::vector<at::Tensor> trainable(const MultiTaskModel& m) {
  std::vector<at::Tensor> out;
  for (const auto& p : m->parameters())
    if (p.requires_grad()) out.push_back(p);
  return out;
}

// Where each parameter sits in `params` (and in a worker's grads), keyed by its TensorImpl.
std::unordered_map<const void*, size_t> positions(const std::vector<at::Tensor>& params) {
  std::unordered_map<const void*, size_t> out;
  for (size_t k = 0; k < params.size(); ++k) out[params[k].unsafeGetTensorImpl()] = k;
  return out;
}

int64_t numel(const std::vector<at::Tensor>& ts) {
  int64_t n = 0;
  for (const auto& t : ts) n += t.numel();
  return n;
}

at::Tensor flatten(const std::vector<at::Tensor>& grads, const std::vector<at::Tensor>& like) {
  std::vector<at::Tensor> flat;
  for (size_t k = 0; k < like.size(); ++k)
    flat.push_back(grads[k].defined() ? grads[k].reshape(-1) : at::zeros({like[k].numel()}, like[k].options()));
  return at::cat(flat);
}

// One worker's shard of a step: its passes write into `buffers` (handed to the reducer) and keep the graph
// between passes.
struct Worker {
  MultiTaskModel model{nullptr};  // the shared model, or a replica aliasing its parameters
  WorkerBuffers buffers;
  std::vector<at::Tensor> losses;  // per task, with graph (forward -> backward passes)
  at::Tensor features;             // the shard's shared representation (representation pass)
  at::Tensor rep_rows;             // [T, rows x D] gradients w.r.t. it
  double share = 0.0;              // shard rows / batch rows
  double seconds = 0.0;            // time spent on this step's shard

  void forward(const std::vector<TaskSpec>& tasks, const Batch& shard, uint64_t seed, const StepContext& ctx,
               int index, bool keep_features);
  void backward_weighted(const std::vector<double>& weights);
  void backward_per_task(const std::vector<double>& weights);
  void representation_pass();
  void trunk_backward(const std::vector<double>& weights);

 private:
  int64_t last_present() const {
    int64_t last = -1;
    for (size_t t = 0; t < losses.size(); ++t)
      if (losses[t].defined()) last = static_cast<int64_t>(t);
    return last;
  }
};

void Worker::forward(const std::vector<TaskSpec>& tasks, const Batch& shard, uint64_t seed, const StepContext& ctx,
                     int index, bool keep_features) {
  const size_t T = tasks.size();
  losses.assign(T, at::Tensor());
  buffers = WorkerBuffers{};
  buffers.losses.assign(T, 0.0);
  buffers.present.assign(T, false);
  if (share == 0.0) return;
  auto start = Clock::now();
  torch::AutoGradMode grad_mode(true);
  // Dropout masks depend on (seed, step, shard) only: reproducible for a given thread count.
  ThreadGeneratorScope rng(make_generator(seed, static_cast<uint64_t>(ctx.step), static_cast<uint64_t>(index)));
  ModelOutput out = model->forward(shard.inputs);
  losses = task_losses(tasks, out.outputs, shard);
  if (keep_features) features = out.features;
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
  buffers.grads = torch::autograd::grad({objective}, trainable(model), {}, /*retain_graph=*/false,
                                        /*create_graph=*/false, /*allow_unused=*/true);
  losses.clear();  // frees the graph
  seconds += seconds_since(start);
}

// kSharedTaskGrads: one backward pass per task gives the task's trunk row and its head's gradient (scaled by
// w_t): T passes, no extra pass for the heads.
void Worker::backward_per_task(const std::vector<double>& weights) {
  const int64_t last = last_present();
  if (last < 0) return;
  auto start = Clock::now();
  torch::AutoGradMode grad_mode(true);
  std::vector<at::Tensor> params = trainable(model);
  std::vector<at::Tensor> shared = model->shared_parameters();
  const auto index = positions(params);
  buffers.grads.assign(params.size(), at::Tensor());
  std::vector<at::Tensor> rows;
  for (size_t t = 0; t < losses.size(); ++t) {
    if (!losses[t].defined()) {
      rows.push_back(at::zeros({numel(shared)}, shared[0].options()));
      continue;
    }
    std::vector<at::Tensor> inputs = shared;
    std::vector<at::Tensor> head = model->head_parameters(t);
    inputs.insert(inputs.end(), head.begin(), head.end());
    auto g = torch::autograd::grad({losses[t] * share}, inputs, {}, /*retain_graph=*/static_cast<int64_t>(t) != last,
                                   /*create_graph=*/false, /*allow_unused=*/true);
    rows.push_back(flatten(std::vector<at::Tensor>(g.begin(), g.begin() + shared.size()), shared));
    for (size_t j = 0; j < head.size(); ++j) {
      at::Tensor hg = g[shared.size() + j];
      if (hg.defined()) buffers.grads[index.at(head[j].unsafeGetTensorImpl())] = hg * weights[t];
    }
  }
  buffers.task_rows = at::stack(rows);
  losses.clear();
  seconds += seconds_since(start);
}

// kRepresentationGrads, first pass: per task, one backward pass through its head gives dL_t/dZ for this
// shard's rows and the head's own gradient; the shard's T x T Gram matrix of the Z-gradients is kept.
void Worker::representation_pass() {
  if (share == 0.0 || !features.defined() || !features.requires_grad()) return;
  auto start = Clock::now();
  torch::AutoGradMode grad_mode(true);
  std::vector<at::Tensor> params = trainable(model);
  const auto index = positions(params);
  buffers.grads.assign(params.size(), at::Tensor());
  std::vector<at::Tensor> rows;
  for (size_t t = 0; t < losses.size(); ++t) {
    if (!losses[t].defined()) {
      rows.push_back(at::zeros({features.numel()}, features.options()));
      continue;
    }
    std::vector<at::Tensor> inputs{features};
    std::vector<at::Tensor> head = model->head_parameters(t);
    inputs.insert(inputs.end(), head.begin(), head.end());
    auto g = torch::autograd::grad({losses[t] * share}, inputs, {}, /*retain_graph=*/true,
                                   /*create_graph=*/false, /*allow_unused=*/true);
    rows.push_back(g[0].defined() ? g[0].reshape(-1) : at::zeros({features.numel()}, features.options()));
    for (size_t j = 0; j < head.size(); ++j) buffers.grads[index.at(head[j].unsafeGetTensorImpl())] = g[j + 1];
  }
  rep_rows = at::stack(rows);
  at::Tensor d = rep_rows.to(at::kDouble);
  buffers.rep_gram = d.mm(d.t());
  seconds += seconds_since(start);
}

// kRepresentationGrads, second pass: one backward pass through the trunk with dZ = sum_t a_t dL_t/dZ.
void Worker::trunk_backward(const std::vector<double>& weights) {
  auto start = Clock::now();
  if (rep_rows.defined()) {
    torch::AutoGradMode grad_mode(true);
    at::Tensor a = at::tensor(weights, at::kDouble).to(rep_rows.scalar_type());
    at::Tensor dz = a.unsqueeze(0).mm(rep_rows).view(features.sizes());
    std::vector<at::Tensor> shared = model->shared_parameters();
    const auto index = positions(trainable(model));
    auto g = torch::autograd::grad({features}, shared, {dz}, /*retain_graph=*/false, /*create_graph=*/false,
                                   /*allow_unused=*/true);
    for (size_t k = 0; k < shared.size(); ++k) buffers.grads[index.at(shared[k].unsafeGetTensorImpl())] = g[k];
  }
  losses.clear();
  features = rep_rows = at::Tensor();
  seconds += seconds_since(start);
}

class ParallelEngine : public GradientEngine {
 public:
  ParallelEngine(MultiTaskModel model, const std::vector<TaskSpec>& tasks, Weighting& weighting,
                 EngineOptions options, const ModelFactory& make_replica, std::unique_ptr<GradientReducer> reducer)
      : model_(std::move(model)), tasks_(tasks), weighting_(weighting), options_(options),
        pool_(options.threads, [n = options.intra_op_threads](int) { set_intra_op_threads_for_this_thread(n); }),
        planner_(options.threads, options.dynamic_balance),
        reducer_(reducer ? std::move(reducer) : std::make_unique<OrderedReducer>(&pool_)) {
    workers_.resize(options_.threads);
    const bool replicas = !model_->buffers().empty() && options_.threads > 1;
    for (auto& w : workers_) {
      if (replicas) {
        TORCH_CHECK(make_replica, "a model with buffers (BatchNorm) needs replicas for parallel training");
        w.model = make_replica();
        alias_parameters(w.model);
      } else {
        w.model = model_;
      }
    }
    params_ = trainable(model_);
    shared_ = model_->shared_parameters();
  }

  StepResult compute_gradients(const Batch& batch, const StepContext& ctx) override {
    const std::vector<int64_t> off = planner_.offsets(batch.size);
    const GradientKind kind = weighting_.needs();
    StepResult r;
    r.step = ctx.step;
    r.examples = batch.size;
    // Weights known before the forward pass: forward and backward of each shard in one pool run.
    const bool fused = kind == GradientKind::kWeightedLoss && weighting_.weights_ignore_step_losses();
    if (fused) r.weights = loss_weights_for_step(weighting_, {}, labels_present(tasks_, batch), ctx);
    std::vector<Batch> shards;
    for (size_t i = 0; i < workers_.size(); ++i) {
      shards.push_back(batch.slice(off[i], off[i + 1]));
      workers_[i].share = double(off[i + 1] - off[i]) / double(batch.size);
      workers_[i].seconds = 0.0;
      workers_[i].model->train(model_->is_training());
    }
    const bool keep_features = kind == GradientKind::kRepresentationGrads;
    pool_.run([&](int i) {
      workers_[i].forward(tasks_, shards[i], options_.seed, ctx, i, keep_features);
      if (fused) workers_[i].backward_weighted(r.weights);
    });
    r.losses.assign(tasks_.size(), 0.0);
    r.present.assign(tasks_.size(), false);
    reducer_->reduce_losses(buffer_list(), r.losses, r.present);
    if (kind == GradientKind::kRepresentationGrads) {
      representation_step(r, ctx);
    } else if (kind == GradientKind::kSharedTaskGrads) {
      per_task_step(r, ctx);
    } else if (!fused) {
      r.weights = loss_weights_for_step(weighting_, r.losses, r.present, ctx);
      pool_.run([&](int i) { workers_[i].backward_weighted(r.weights); });
    }
    for (size_t t = 0; t < tasks_.size(); ++t)
      if (r.present[t]) r.total_loss += r.weights[t] * r.losses[t];
    std::vector<double> seconds;
    for (const auto& w : workers_) seconds.push_back(w.seconds);
    planner_.record(off, seconds);
    reducer_->reduce_gradients(buffer_list(), params_);
    if (kind == GradientKind::kSharedTaskGrads) set_shared_gradients(r, ctx);
    average_buffers();
    return r;
  }

  std::vector<double> batch_losses(const Batch& batch, const StepContext& ctx) override;

 private:
  WorkerBufferList buffer_list() const {
    WorkerBufferList out;
    for (const auto& w : workers_) out.push_back(&w.buffers);
    return out;
  }

  void representation_step(StepResult& r, const StepContext& ctx) {
    pool_.run([&](int i) { workers_[i].representation_pass(); });
    at::Tensor gram = reducer_->reduce_gram(buffer_list(), static_cast<int64_t>(tasks_.size()));
    r.weights = representation_weights_for_step(weighting_, gram, r.losses, r.present, ctx);
    pool_.run([&](int i) { workers_[i].trunk_backward(r.weights); });
  }

  void per_task_step(StepResult& r, const StepContext& ctx) {
    r.weights = loss_weights_for_step(weighting_, r.losses, r.present, ctx);  // the heads' weights
    pool_.run([&](int i) { workers_[i].backward_per_task(r.weights); });
  }

  // The weighting method combines the reduced T x P matrix into the trunk's gradient; r.weights becomes its
  // effective task weights (the heads were trained with the weights of per_task_step).
  void set_shared_gradients(StepResult& r, const StepContext& ctx) {
    at::Tensor G = reducer_->reduce_task_rows(buffer_list());
    if (!G.defined()) return;
    at::Tensor combined = combine_for_step(weighting_, G, r.losses, r.present, ctx, r.weights);
    int64_t pos = 0;
    for (auto& p : shared_) {
      p.mutable_grad() = combined.narrow(0, pos, p.numel()).view(p.sizes()).clone();
      pos += p.numel();
    }
  }

  // Replica parameters share storage with the model's, so optimizer updates reach every replica.
  void alias_parameters(MultiTaskModel& replica) {
    torch::NoGradGuard no_grad;
    auto mine = model_->named_parameters();
    for (auto& kv : replica->named_parameters()) {
      kv.value().set_data(mine[kv.key()]);
      kv.value().set_requires_grad(mine[kv.key()].requires_grad());
    }
    auto bufs = model_->named_buffers();
    for (auto& kv : replica->named_buffers()) kv.value().copy_(bufs[kv.key()]);
    replica->set_frozen_norm_modules(model_->frozen_norm_modules());  // frozen BatchNorm stays in eval mode
  }

  void average_buffers();

  MultiTaskModel model_;
  const std::vector<TaskSpec>& tasks_;
  Weighting& weighting_;
  EngineOptions options_;
  WorkerPool pool_;
  ShardPlanner planner_;
  std::unique_ptr<GradientReducer> reducer_;
  std::vector<Worker> workers_;
  std::vector<at::Tensor> params_, shared_;
};

// Running statistics: the model gets the mean over workers; every replica restarts from it.
void ParallelEngine::average_buffers() {
  if (workers_.empty() || workers_[0].model.get() == model_.get()) return;
  torch::NoGradGuard no_grad;
  auto target = model_->named_buffers();
  std::vector<torch::OrderedDict<std::string, at::Tensor>> reps;
  for (auto& w : workers_) reps.push_back(w.model->named_buffers());
  for (auto& kv : target) {
    at::Tensor& b = kv.value();
    if (at::isFloatingType(b.scalar_type())) {
      at::Tensor acc = at::zeros_like(b, at::kDouble);
      for (auto& r : reps) acc += r[kv.key()].to(at::kDouble);
      b.copy_(acc / double(reps.size()));
    } else {
      b.copy_(reps[0][kv.key()]);  // counters (num_batches_tracked) agree
    }
    for (auto& r : reps) r[kv.key()].copy_(b);
  }
}

std::vector<double> ParallelEngine::batch_losses(const Batch& batch, const StepContext& ctx) {
  const int n = options_.threads;
  const size_t T = tasks_.size();
  std::vector<int64_t> off = shard_offsets(batch.size, n);
  const double B = static_cast<double>(batch.size);
  // Evaluation must not move BatchNorm running statistics: keep and restore every worker's buffers.
  std::vector<std::vector<at::Tensor>> saved(n);
  for (int i = 0; i < n; ++i)
    for (const auto& b : workers_[i].model->buffers()) saved[i].push_back(b.clone());
  std::vector<std::vector<double>> values(n, std::vector<double>(T, 0.0));
  for (auto& w : workers_) w.model->train(model_->is_training());
  pool_.run([&](int i) {
    if (off[i + 1] == off[i]) return;
    at::NoGradGuard no_grad;
    ThreadGeneratorScope rng(make_generator(options_.seed, static_cast<uint64_t>(ctx.step), static_cast<uint64_t>(i)));
    Batch shard = batch.slice(off[i], off[i + 1]);
    std::vector<at::Tensor> losses = task_losses(tasks_, workers_[i].model->forward(shard.inputs).outputs, shard);
    for (size_t t = 0; t < T; ++t)
      if (losses[t].defined()) values[i][t] = losses[t].item<double>() * double(off[i + 1] - off[i]) / B;
  });
  for (int i = 0; i < n; ++i) {
    size_t k = 0;
    at::NoGradGuard no_grad;
    for (auto& b : workers_[i].model->buffers()) b.copy_(saved[i][k++]);
  }
  std::vector<double> out(T, 0.0);
  for (int i = 0; i < n; ++i)  // fixed order
    for (size_t t = 0; t < T; ++t) out[t] += values[i][t];
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
