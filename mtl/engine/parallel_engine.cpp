#include "mtl/engine/parallel_engine.h"

#include <algorithm>
#include <chrono>
#include <unordered_map>

#include "mtl/core/random.h"
#include "mtl/core/threads.h"

namespace mtl {

std::vector<int64_t> shard_offsets(int64_t batch_size, int shards) {
  std::vector<int64_t> off(shards + 1, 0);
  for (int i = 0; i < shards; ++i) off[i + 1] = off[i] + batch_size / shards + (i < batch_size % shards ? 1 : 0);
  return off;
}

std::vector<int64_t> balanced_shard_offsets(int64_t batch_size, const std::vector<double>& speeds) {
  const int n = static_cast<int>(speeds.size());
  double total = 0;
  for (double s : speeds) total += std::max(s, 1e-12);
  int64_t floor_each = batch_size >= n ? 1 : 0;  // keep every worker measured
  int64_t rest = batch_size - floor_each * n;
  std::vector<int64_t> size(n, floor_each);
  std::vector<std::pair<double, int>> frac;
  int64_t used = 0;
  for (int i = 0; i < n; ++i) {
    double exact = rest * std::max(speeds[i], 1e-12) / total;
    int64_t whole = static_cast<int64_t>(exact);
    size[i] += whole;
    used += whole;
    frac.emplace_back(exact - whole, -i);
  }
  std::sort(frac.rbegin(), frac.rend());  // largest remainder first, lower index on ties
  for (int64_t k = 0; k < rest - used; ++k) size[-frac[k].second] += 1;
  std::vector<int64_t> off(n + 1, 0);
  for (int i = 0; i < n; ++i) off[i + 1] = off[i] + size[i];
  return off;
}

namespace {

struct WorkerState {
  MultiTaskModel model{nullptr};         // the shared model, or a replica aliasing its parameters
  std::vector<at::Tensor> losses;        // per task, with graph (phase 1 -> phase 2)
  std::vector<double> loss_values;
  std::vector<bool> present;             // per task: has labels in this shard
  std::vector<at::Tensor> grads;         // per trainable parameter (kWeightedLoss / head grads)
  at::Tensor task_rows;                  // [T, P] shared-parameter gradients (kSharedTaskGrads)
  at::Tensor features;                   // shard's shared representation (kRepresentationGrads)
  at::Tensor rep_rows;                   // [T, rows x D] gradients w.r.t. it (kRepresentationGrads)
  at::Tensor rep_gram;                   // rep_rows rep_rows^T in float64
  std::unordered_map<const void*, size_t> positions;  // parameter -> index in grads (kRepresentationGrads)
  double seconds = 0.0;                  // time spent on this step's shard
  double speed = 0.0;                    // smoothed examples/s (dynamic balance)
};

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

at::Tensor flatten(const std::vector<at::Tensor>& grads, const std::vector<at::Tensor>& like) {
  std::vector<at::Tensor> flat;
  for (size_t k = 0; k < like.size(); ++k)
    flat.push_back(grads[k].defined() ? grads[k].reshape(-1) : at::zeros({like[k].numel()}, like[k].options()));
  return at::cat(flat);
}

class ParallelEngine : public GradientEngine {
 public:
  ParallelEngine(MultiTaskModel model, const std::vector<TaskSpec>& tasks, Weighting& weighting,
                 ParallelEngineOptions options, std::function<MultiTaskModel()> make_replica)
      : model_(std::move(model)), tasks_(tasks), weighting_(weighting), options_(options),
        pool_(options.threads, [n = options.intra_op_threads](int) { set_intra_op_threads_for_this_thread(n); }) {
    workers_.resize(options_.threads);
    bool has_buffers = !model_->buffers().empty();
    for (int i = 0; i < options_.threads; ++i) {
      if (has_buffers && options_.threads > 1) {
        TORCH_CHECK(make_replica, "a model with buffers (BatchNorm) needs replicas for parallel training");
        workers_[i].model = make_replica();
        alias_parameters(workers_[i].model);
      } else {
        workers_[i].model = model_;
      }
    }
    params_ = trainable(model_);
    shared_ = model_->shared_parameters();
    // Parameter groups for the parallel reduction: contiguous, about total/threads elements each.
    for (const auto& p : params_) total_numel_ += p.numel();
    reduce_groups_.assign(options_.threads + 1, params_.size());
    reduce_groups_[0] = 0;
    int64_t seen = 0;
    int group = 1;
    for (size_t k = 0; k < params_.size() && group < options_.threads; ++k) {
      seen += params_[k].numel();
      while (group < options_.threads && seen >= total_numel_ * group / options_.threads)
        reduce_groups_[group++] = k + 1;
    }
  }

  StepResult compute_gradients(const Batch& batch, const StepContext& ctx) override {
    const int n = options_.threads;
    const size_t T = tasks_.size();
    std::vector<int64_t> off = shard_offsets(batch.size, n);
    if (options_.dynamic_balance && workers_[0].speed > 0) {
      std::vector<double> speeds;
      for (auto& w : workers_) speeds.push_back(w.speed);
      off = balanced_shard_offsets(batch.size, speeds);
    }
    const double B = static_cast<double>(batch.size);
    for (auto& w : workers_) w.model->train(model_->is_training());

    const bool per_task = weighting_.needs() == GradientKind::kSharedTaskGrads;
    const bool per_rep = weighting_.needs() == GradientKind::kRepresentationGrads;
    StepResult r;
    // Weights known before the forward pass: forward and backward of each shard in one pool run.
    const bool fused = !per_task && !per_rep && weighting_.weights_ignore_step_losses();
    if (fused) r.weights = loss_weights_for_step(weighting_, {}, labels_present(tasks_, batch), ctx);

    // Phase 1: forward and per-task losses of each shard.
    auto forward = [&](int i) {
      WorkerState& w = workers_[i];
      auto start = std::chrono::steady_clock::now();
      w.losses.assign(T, at::Tensor());
      w.loss_values.assign(T, 0.0);
      w.present.assign(T, false);
      w.seconds = 0.0;
      if (off[i + 1] == off[i]) return;
      torch::AutoGradMode grad_mode(true);
      // Dropout masks depend on (seed, step, shard) only: reproducible for a given thread count.
      ThreadGeneratorScope rng(make_generator(options_.seed, static_cast<uint64_t>(ctx.step), static_cast<uint64_t>(i)));
      Batch shard = batch.slice(off[i], off[i + 1]);
      ModelOutput out = w.model->forward(shard.inputs);
      w.losses = task_losses(tasks_, out.outputs, shard);
      if (per_rep) w.features = out.features;
      for (size_t t = 0; t < T; ++t)
        if (w.losses[t].defined()) {
          w.present[t] = true;
          w.loss_values[t] = w.losses[t].item<double>();
        }
      w.seconds += seconds_since(start);
    };

    // Phase 2: backward into thread-local buffers.
    auto backward = [&](int i) {
      WorkerState& w = workers_[i];
      auto start = std::chrono::steady_clock::now();
      w.grads.clear();
      w.task_rows = at::Tensor();
      if (off[i + 1] == off[i]) return;
      torch::AutoGradMode grad_mode(true);
      const double scale = double(off[i + 1] - off[i]) / B;
      std::vector<at::Tensor> wparams = trainable(w.model);
      int64_t last = -1;  // the last task present in this shard (its pass may free the graph)
      for (size_t t = 0; t < T; ++t)
        if (w.losses[t].defined()) last = static_cast<int64_t>(t);
      if (last < 0) return;
      if (per_task) {
        // One backward pass per task gives the task's trunk row and its head's gradient (scaled by w_t):
        // T passes, no extra pass for the heads.
        std::vector<at::Tensor> wshared = w.model->shared_parameters();
        const auto index = positions(wparams);
        w.grads.assign(wparams.size(), at::Tensor());
        std::vector<at::Tensor> rows;
        for (size_t t = 0; t < T; ++t) {
          if (!w.losses[t].defined()) {
            rows.push_back(at::zeros({numel(wshared)}, wshared[0].options()));
            continue;
          }
          std::vector<at::Tensor> inputs = wshared;
          std::vector<at::Tensor> head = w.model->head_parameters(t);
          inputs.insert(inputs.end(), head.begin(), head.end());
          auto g = torch::autograd::grad({w.losses[t] * scale}, inputs, {}, /*retain_graph=*/static_cast<int64_t>(t) != last,
                                         /*create_graph=*/false, /*allow_unused=*/true);
          rows.push_back(flatten(std::vector<at::Tensor>(g.begin(), g.begin() + wshared.size()), wshared));
          for (size_t j = 0; j < head.size(); ++j) {
            at::Tensor hg = g[wshared.size() + j];
            if (hg.defined()) w.grads[index.at(head[j].unsafeGetTensorImpl())] = hg * r.weights[t];
          }
        }
        w.task_rows = at::stack(rows);
      } else {
        at::Tensor objective;
        for (size_t t = 0; t < T; ++t) {
          if (!w.losses[t].defined()) continue;
          at::Tensor term = w.losses[t] * (r.weights[t] * scale);
          objective = objective.defined() ? objective + term : term;
        }
        w.grads = torch::autograd::grad({objective}, wparams, {}, /*retain_graph=*/false, /*create_graph=*/false,
                                        /*allow_unused=*/true);
      }
      w.losses.clear();  // frees the graph
      w.seconds += seconds_since(start);
    };

    // MGDA-UB, phase 2: per task, one backward pass through its head gives dL_t/dZ for this shard's rows
    // and the head's own gradient; the shard's T x T Gram matrix of the Z-gradients is kept.
    auto representation = [&](int i) {
      WorkerState& w = workers_[i];
      auto start = std::chrono::steady_clock::now();
      w.grads.clear();
      w.rep_rows = w.rep_gram = at::Tensor();
      if (off[i + 1] == off[i] || !w.features.defined() || !w.features.requires_grad()) return;
      torch::AutoGradMode grad_mode(true);
      const double scale = double(off[i + 1] - off[i]) / B;
      std::vector<at::Tensor> wparams = trainable(w.model);
      w.positions = positions(wparams);
      w.grads.assign(wparams.size(), at::Tensor());
      std::vector<at::Tensor> rows;
      for (size_t t = 0; t < T; ++t) {
        if (!w.losses[t].defined()) {
          rows.push_back(at::zeros({w.features.numel()}, w.features.options()));
          continue;
        }
        std::vector<at::Tensor> inputs{w.features};
        std::vector<at::Tensor> head = w.model->head_parameters(t);
        inputs.insert(inputs.end(), head.begin(), head.end());
        auto g = torch::autograd::grad({w.losses[t] * scale}, inputs, {}, /*retain_graph=*/true,
                                       /*create_graph=*/false, /*allow_unused=*/true);
        rows.push_back(g[0].defined() ? g[0].reshape(-1) : at::zeros({w.features.numel()}, w.features.options()));
        for (size_t j = 0; j < head.size(); ++j) w.grads[w.positions.at(head[j].unsafeGetTensorImpl())] = g[j + 1];
      }
      w.rep_rows = at::stack(rows);
      at::Tensor d = w.rep_rows.to(at::kDouble);
      w.rep_gram = d.mm(d.t());
      w.seconds += seconds_since(start);
    };
    // MGDA-UB, phase 3: one backward pass through the trunk with dZ = sum_t a_t dL_t/dZ.
    auto trunk_backward = [&](int i) {
      WorkerState& w = workers_[i];
      auto start = std::chrono::steady_clock::now();
      if (w.rep_rows.defined()) {
        torch::AutoGradMode grad_mode(true);
        at::Tensor a = at::tensor(r.weights, at::kDouble).to(w.rep_rows.scalar_type());
        at::Tensor dz = a.unsqueeze(0).mm(w.rep_rows).view(w.features.sizes());
        std::vector<at::Tensor> shared = w.model->shared_parameters();
        auto g = torch::autograd::grad({w.features}, shared, {dz}, /*retain_graph=*/false, /*create_graph=*/false,
                                       /*allow_unused=*/true);
        for (size_t k = 0; k < shared.size(); ++k) w.grads[w.positions.at(shared[k].unsafeGetTensorImpl())] = g[k];
      }
      w.losses.clear();
      w.features = w.rep_rows = at::Tensor();
      w.seconds += seconds_since(start);
    };

    if (fused) {
      pool_.run([&](int i) {
        forward(i);
        backward(i);
      });
    } else {
      pool_.run(forward);
    }
    r.losses.assign(T, 0.0);
    r.present.assign(T, false);
    for (int i = 0; i < n; ++i)  // fixed order
      for (size_t t = 0; t < T; ++t)
        if (workers_[i].present[t]) {
          r.present[t] = true;
          r.losses[t] += workers_[i].loss_values[t] * double(off[i + 1] - off[i]) / B;
        }
    if (per_rep) {
      pool_.run(representation);
      at::Tensor gram = at::zeros({static_cast<int64_t>(T), static_cast<int64_t>(T)}, at::kDouble);
      for (int i = 0; i < n; ++i)  // fixed order
        if (workers_[i].rep_gram.defined()) gram += workers_[i].rep_gram;
      r.weights = representation_weights_for_step(weighting_, gram, r.losses, r.present, ctx);
    } else if (!fused) {
      r.weights = loss_weights_for_step(weighting_, r.losses, r.present, ctx);
    }
    for (size_t t = 0; t < T; ++t)
      if (r.present[t]) r.total_loss += r.weights[t] * r.losses[t];
    if (per_rep) {
      pool_.run(trunk_backward);
    } else if (!fused) {
      pool_.run(backward);
    }
    for (int i = 0; i < n; ++i) {
      WorkerState& w = workers_[i];
      if (w.seconds <= 0 || off[i + 1] == off[i]) continue;
      double s = double(off[i + 1] - off[i]) / w.seconds;
      w.speed = w.speed > 0 ? 0.7 * w.speed + 0.3 * s : s;
    }

    // Deterministic reduction: every parameter's gradient is the sum over workers in worker order, whoever
    // computes it. Large models split the parameters between the workers (contiguous groups of about equal
    // size); small ones reduce on this thread, where another pool round trip would cost more than it saves.
    auto reduce = [&](size_t k) {
      at::Tensor sum;
      int terms = 0;
      for (int i = 0; i < n; ++i) {
        if (workers_[i].grads.empty() || !workers_[i].grads[k].defined()) continue;
        const at::Tensor& g = workers_[i].grads[k];
        // The first addition is out of place: never write into a tensor autograd handed out (it may be
        // shared with another parameter's gradient).
        sum = terms == 0 ? g : terms == 1 ? sum + g : sum.add_(g);
        ++terms;
      }
      params_[k].mutable_grad() = sum;
    };
    if (n > 1 && total_numel_ >= kParallelReduceNumel) {
      pool_.run([&](int i) {
        for (size_t k = reduce_groups_[i]; k < reduce_groups_[i + 1]; ++k) reduce(k);
      });
    } else {
      for (size_t k = 0; k < params_.size(); ++k) reduce(k);
    }
    if (per_task) {
      at::Tensor G;
      for (int i = 0; i < n; ++i) {
        if (!workers_[i].task_rows.defined()) continue;
        G = G.defined() ? G + workers_[i].task_rows : workers_[i].task_rows.clone();
      }
      if (G.defined()) {
        // Logs the method's effective task weights (heads were trained with weight 1).
        at::Tensor combined = combine_for_step(weighting_, G, r.losses, r.present, ctx, r.weights);
        int64_t pos = 0;
        for (auto& p : shared_) {
          p.mutable_grad() = combined.narrow(0, pos, p.numel()).view(p.sizes()).clone();
          pos += p.numel();
        }
      }
    }
    average_buffers();
    return r;
  }

  std::vector<double> batch_losses(const Batch& batch, const StepContext& ctx) override {
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

 private:
  static std::vector<at::Tensor> trainable(const MultiTaskModel& m) {
    std::vector<at::Tensor> out;
    for (const auto& p : m->parameters())
      if (p.requires_grad()) out.push_back(p);
    return out;
  }
  // Where each parameter sits in `params` (and in a worker's grads), keyed by its TensorImpl.
  static std::unordered_map<const void*, size_t> positions(const std::vector<at::Tensor>& params) {
    std::unordered_map<const void*, size_t> out;
    for (size_t k = 0; k < params.size(); ++k) out[params[k].unsafeGetTensorImpl()] = k;
    return out;
  }
  static int64_t numel(const std::vector<at::Tensor>& ts) {
    int64_t n = 0;
    for (const auto& t : ts) n += t.numel();
    return n;
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

  // Running statistics: the model gets the mean over workers; every replica restarts from it.
  void average_buffers() {
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

  MultiTaskModel model_;
  const std::vector<TaskSpec>& tasks_;
  Weighting& weighting_;
  ParallelEngineOptions options_;
  WorkerPool pool_;
  std::vector<WorkerState> workers_;
  std::vector<at::Tensor> params_, shared_;
  int64_t total_numel_ = 0;
  std::vector<size_t> reduce_groups_;  // worker i reduces parameters [reduce_groups_[i], reduce_groups_[i + 1])
  static constexpr int64_t kParallelReduceNumel = 1 << 20;
};

}  // namespace

std::unique_ptr<GradientEngine> make_parallel_engine(MultiTaskModel model, const std::vector<TaskSpec>& tasks,
                                                     Weighting& weighting, ParallelEngineOptions options,
                                                     std::function<MultiTaskModel()> make_replica) {
  TORCH_CHECK(options.threads >= 1, "at least one worker thread");
  return std::make_unique<ParallelEngine>(std::move(model), tasks, weighting, options, std::move(make_replica));
}

}  // namespace mtl
