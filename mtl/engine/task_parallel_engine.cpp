#include "mtl/engine/task_parallel_engine.h"

#include <stdexcept>
#include <unordered_map>

#include "mtl/core/random.h"
#include "mtl/core/threads.h"
#include "mtl/engine/replicas.h"
#include "mtl/engine/shard_plan.h"

namespace mtl {

namespace {

// The trunk's output cut from its graph: each distinct tensor the heads read becomes a leaf (`heads_view` is
// the trunk output with every tensor replaced by its leaf). The heads' backward passes stop at the leaves; the
// trunk's backward pass starts from the originals with the leaves' summed gradients.
struct Cut {
  std::vector<at::Tensor> originals;  // trunk outputs, with graph
  std::vector<at::Tensor> leaves;     // detached; requires grad where the original does
  TrunkOutput heads_view;
};

Cut cut_trunk(const TrunkOutput& trunk) {
  Cut c;
  std::unordered_map<const void*, size_t> seen;
  auto leaf = [&](const at::Tensor& x) -> at::Tensor {
    if (!x.defined()) return x;
    auto it = seen.find(x.unsafeGetTensorImpl());
    if (it != seen.end()) return c.leaves[it->second];
    at::Tensor l = x.detach();
    if (x.requires_grad()) l.requires_grad_(true);
    seen[x.unsafeGetTensorImpl()] = c.leaves.size();
    c.originals.push_back(x);
    c.leaves.push_back(l);
    return l;
  };
  for (const at::Tensor& x : trunk.task) c.heads_view.task.push_back(leaf(x));
  c.heads_view.tokens = leaf(trunk.tokens);
  for (const auto& maps : trunk.maps) {
    std::vector<at::Tensor> m;
    for (const at::Tensor& x : maps) m.push_back(leaf(x));
    c.heads_view.maps.push_back(std::move(m));
  }
  return c;
}

// One data-parallel shard: a copy of the model (the model itself, or a replica aliasing its parameters) and
// what its passes leave for the next one. Head t's entries are written only by the thread that runs task t.
struct Shard {
  MultiTaskModel model{nullptr};
  std::vector<at::Tensor> params;                    // trainable, in the engine's order
  std::unordered_map<const void*, size_t> index;     // params[index[impl]]
  std::vector<std::vector<at::Tensor>> head_params;  // per task: its head's trainable parameters
  std::vector<at::Tensor> trunk_params;              // every other trainable parameter
  WorkerBuffers buffers;
  Batch rows;
  double share = 0.0;  // rows / batch rows
  Cut cut;
  std::vector<at::Tensor> regularizers;               // per task (the trunk's), or empty
  std::vector<at::Tensor> losses;                     // per task: the head's loss, with graph
  std::vector<std::vector<at::Tensor>> leaf_grads;    // per task: w_t x share x dL_t/d(leaf), per leaf

  void bind(MultiTaskModel m) {
    model = std::move(m);
    params = trainable_parameters(*model);
    index = parameter_positions(params);
    std::unordered_map<const void*, bool> in_head;
    head_params.assign(model->num_tasks(), {});
    for (size_t t = 0; t < model->num_tasks(); ++t)
      for (const auto& p : model->head(t)->parameters())
        if (p.requires_grad()) {
          head_params[t].push_back(p);
          in_head[p.unsafeGetTensorImpl()] = true;
        }
    trunk_params.clear();
    for (const auto& p : params)
      if (!in_head.count(p.unsafeGetTensorImpl())) trunk_params.push_back(p);
  }
};

class TaskParallelEngine : public GradientEngine {
 public:
  TaskParallelEngine(MultiTaskModel model, const std::vector<TaskSpec>& tasks, Weighting& weighting,
                     EngineOptions options, const ModelFactory& make_replica, std::unique_ptr<GradientReducer> reducer)
      : model_(std::move(model)), tasks_(tasks), weighting_(weighting), options_(options),
        copies_(model_parallel_copies(options)), per_copy_(options.threads / copies_),
        pool_(options.threads, [n = options.intra_op_threads](int) { set_intra_op_threads_for_this_thread(n); }),
        reducer_(reducer                ? std::move(reducer)
                 : options.make_reducer ? options.make_reducer()
                                        : std::make_unique<OrderedReducer>()) {
    if (weighting_.needs() != GradientKind::kWeightedLoss)
      throw std::invalid_argument("task model parallelism supports loss-based weighting methods only");
    reducer_->use_pool(&pool_);
    shards_.resize(static_cast<size_t>(copies_));
    const bool replicas = !model_->buffers().empty() && copies_ > 1;
    for (auto& s : shards_) {
      if (replicas) {
        TORCH_CHECK(make_replica, "a model with buffers (BatchNorm) needs replicas for data-parallel shards");
        MultiTaskModel replica = make_replica();
        alias_parameters(model_, replica);
        s.bind(replica);
        replicas_.push_back(replica);
      } else {
        s.bind(model_);
      }
    }
    params_ = trainable_parameters(*model_);
  }

  // Four pool runs: trunks (one thread per shard), heads forward (and backward when the weights do not depend
  // on this step's losses), heads backward (otherwise, after the losses are reduced), trunks backward.
  StepResult compute_gradients(const Batch& batch, const StepContext& ctx) override {
    const std::vector<int64_t> off = shard_offsets(batch.size, copies_);
    const bool fused = weighting_.weights_ignore_step_losses();
    StepResult r;
    r.step = ctx.step;
    r.examples = batch.whole_size();
    if (fused) r.weights = loss_weights_for_step(weighting_, {}, labels_present(tasks_, batch), ctx);
    for (size_t i = 0; i < shards_.size(); ++i) {
      shards_[i].rows = batch.slice(off[i], off[i + 1]);
      shards_[i].share = double(off[i + 1] - off[i]) / double(batch.whole_size());
      shards_[i].model->train(model_->is_training());
    }
    run([&](int i) {
      if (i % per_copy_ == 0) trunk_forward(shards_[i / per_copy_], i / per_copy_, ctx);
    });
    run([&](int i) {
      Shard& s = shards_[i / per_copy_];
      for (size_t t = i % per_copy_; t < tasks_.size(); t += per_copy_) {
        head_forward(s, t, i / per_copy_, ctx);
        if (fused) head_backward(s, t, r.weights[t]);
      }
    });
    r.losses.assign(tasks_.size(), 0.0);
    r.present.assign(tasks_.size(), false);
    reducer_->reduce_losses(buffer_list(), r.losses, r.present);
    reduce_gates(r);
    if (!fused) {
      r.weights = loss_weights_for_step(weighting_, r.losses, r.present, ctx);
      run([&](int i) {
        Shard& s = shards_[i / per_copy_];
        for (size_t t = i % per_copy_; t < tasks_.size(); t += per_copy_) head_backward(s, t, r.weights[t]);
      });
    }
    run([&](int i) {
      if (i % per_copy_ == 0) trunk_backward(shards_[i / per_copy_], r.weights);
    });
    reducer_->reduce_gradients(buffer_list(), params_);
    for (size_t t = 0; t < tasks_.size(); ++t)
      if (r.present[t]) r.total_loss += r.weights[t] * r.losses[t];
    average_replica_buffers(model_, replicas_, *reducer_);
    return r;
  }

  // The whole model on each shard (one thread per shard), without gradients; BatchNorm statistics kept.
  std::vector<double> batch_losses(const Batch& batch, const StepContext& ctx) override {
    const std::vector<int64_t> off = shard_offsets(batch.size, copies_);
    const size_t T = tasks_.size();
    std::vector<std::vector<at::Tensor>> saved(shards_.size());
    for (size_t i = 0; i < shards_.size(); ++i)
      for (const auto& b : shards_[i].model->buffers()) saved[i].push_back(b.clone());
    std::vector<WorkerBuffers> parts(shards_.size());
    run([&](int i) {
      if (i % per_copy_ != 0) return;
      const size_t k = static_cast<size_t>(i / per_copy_);
      parts[k].losses.assign(T, 0.0);
      parts[k].present.assign(T, true);
      if (off[k + 1] == off[k]) return;
      at::NoGradGuard no_grad;
      ThreadGeneratorScope rng(StepInfo{options_.seed, ctx.step, ctx.epoch}, trunk_stream(static_cast<int>(k)));
      Batch rows = batch.slice(off[k], off[k + 1]);
      shards_[k].model->train(model_->is_training());
      ModelOutput out;
      {
        PrecisionScope autocast(options_.precision);
        out = shards_[k].model->forward(rows.inputs);
      }
      std::vector<at::Tensor> losses = task_losses(tasks_, out, rows);
      for (size_t t = 0; t < T; ++t)
        if (losses[t].defined())
          parts[k].losses[t] = losses[t].item<double>() * double(off[k + 1] - off[k]) / double(batch.whole_size());
    });
    at::NoGradGuard no_grad;
    for (size_t i = 0; i < shards_.size(); ++i) {
      size_t k = 0;
      for (auto& b : shards_[i].model->buffers()) b.copy_(saved[i][k++]);
    }
    WorkerBufferList list;
    for (const auto& p : parts) list.push_back(&p);
    std::vector<double> out(T, 0.0);
    std::vector<bool> present(T, false);
    reducer_->reduce_losses(list, out, present);
    return out;
  }

 private:
  void run(const std::function<void(int)>& fn) {
    if (pool_.size() > 1) return pool_.run(fn);
    IntraOpThreadsScope threads(options_.intra_op_threads);
    fn(0);
  }

  // Dropout streams: the trunk of shard k draws from stream first_shard + k (as a data-parallel worker's
  // forward pass), head t of that shard from its own stream, so draws do not depend on which thread runs it.
  uint64_t trunk_stream(int k) const { return static_cast<uint64_t>(options_.first_shard + k); }
  uint64_t head_stream(int k, size_t t) const {
    return (uint64_t{1} << 32) + trunk_stream(k) * tasks_.size() + static_cast<uint64_t>(t);
  }

  void trunk_forward(Shard& s, int k, const StepContext& ctx) {
    const size_t T = tasks_.size();
    s.buffers.losses.assign(T, 0.0);
    s.buffers.present.assign(T, false);
    s.buffers.grads.assign(s.params.size(), at::Tensor());
    s.buffers.gates.clear();
    s.losses.assign(T, at::Tensor());
    s.leaf_grads.assign(T, {});
    s.cut = Cut();
    s.regularizers.clear();
    if (s.share == 0.0) return;
    torch::AutoGradMode grad_mode(true);
    ThreadGeneratorScope rng(StepInfo{options_.seed, ctx.step, ctx.epoch}, trunk_stream(k));
    TrunkOutput trunk;
    {
      PrecisionScope autocast(options_.precision);
      trunk = s.model->trunk(s.rows.inputs);
    }
    for (const at::Tensor& g : trunk.gates) {  // this shard's part of the batch's mean gate weights
      at::Tensor sums = g.detach().sum(0).to(at::kDouble).mul_(s.share / double(s.rows.size)).contiguous();
      s.buffers.gates.insert(s.buffers.gates.end(), sums.data_ptr<double>(), sums.data_ptr<double>() + sums.numel());
    }
    s.regularizers = trunk.regularizers;
    s.cut = cut_trunk(trunk);
  }

  void head_forward(Shard& s, size_t t, int k, const StepContext& ctx) {
    if (s.share == 0.0) return;
    torch::AutoGradMode grad_mode(true);
    ThreadGeneratorScope rng(StepInfo{options_.seed, ctx.step, ctx.epoch}, head_stream(k, t));
    at::Tensor out;
    {
      PrecisionScope autocast(options_.precision);
      out = s.model->head_output(t, s.cut.heads_view);
    }
    at::Tensor loss = task_loss(tasks_[t], out, s.rows);
    if (!loss.defined()) return;
    s.losses[t] = loss;
    double value = loss.item<double>();
    if (t < s.regularizers.size() && s.regularizers[t].defined()) value += s.regularizers[t].item<double>();
    s.buffers.losses[t] = value * s.share;
    s.buffers.present[t] = true;
  }

  // Head t's parameters get w_t x share x dL_t; the leaves' gradients wait for the trunk's pass.
  void head_backward(Shard& s, size_t t, double weight) {
    if (!s.losses[t].defined()) return;
    torch::AutoGradMode grad_mode(true);
    std::vector<at::Tensor> inputs;
    std::vector<size_t> leaf_of;  // inputs[j] is leaf leaf_of[j]
    for (size_t l = 0; l < s.cut.leaves.size(); ++l)
      if (s.cut.leaves[l].requires_grad()) {
        inputs.push_back(s.cut.leaves[l]);
        leaf_of.push_back(l);
      }
    const size_t n = inputs.size();
    inputs.insert(inputs.end(), s.head_params[t].begin(), s.head_params[t].end());
    if (inputs.empty()) return;
    auto g = torch::autograd::grad({s.losses[t] * (weight * s.share)}, inputs, {}, /*retain_graph=*/false,
                                   /*create_graph=*/false, /*allow_unused=*/true);
    s.leaf_grads[t].assign(s.cut.leaves.size(), at::Tensor());
    for (size_t j = 0; j < n; ++j) s.leaf_grads[t][leaf_of[j]] = g[j];
    for (size_t j = n; j < inputs.size(); ++j)
      if (g[j].defined()) s.buffers.grads[s.index.at(inputs[j].unsafeGetTensorImpl())] = g[j];
    s.losses[t] = at::Tensor();  // frees the head's graph
  }

  // One backward pass through the trunk: each leaf's gradients summed in task order, plus the tasks'
  // regularisers weighted as their losses.
  void trunk_backward(Shard& s, const std::vector<double>& weights) {
    std::vector<at::Tensor> outputs, grads;
    for (size_t l = 0; l < s.cut.leaves.size(); ++l) {
      at::Tensor sum;
      for (size_t t = 0; t < tasks_.size(); ++t) {
        if (s.leaf_grads[t].empty() || !s.leaf_grads[t][l].defined()) continue;
        sum = sum.defined() ? sum + s.leaf_grads[t][l] : s.leaf_grads[t][l];
      }
      if (!sum.defined()) continue;
      outputs.push_back(s.cut.originals[l]);
      grads.push_back(sum);
    }
    for (size_t t = 0; t < s.regularizers.size() && t < tasks_.size(); ++t) {
      const at::Tensor& reg = s.regularizers[t];
      if (!s.buffers.present[t] || !reg.defined() || !reg.requires_grad()) continue;
      outputs.push_back(reg);
      grads.push_back(at::full_like(reg, weights[t] * s.share));
    }
    if (!outputs.empty() && !s.trunk_params.empty()) {
      torch::AutoGradMode grad_mode(true);
      auto g = torch::autograd::grad(outputs, s.trunk_params, grads, /*retain_graph=*/false, /*create_graph=*/false,
                                     /*allow_unused=*/true);
      for (size_t j = 0; j < g.size(); ++j)
        if (g[j].defined()) s.buffers.grads[s.index.at(s.trunk_params[j].unsafeGetTensorImpl())] = g[j];
    }
    s.cut = Cut();
    s.leaf_grads.clear();
    s.regularizers.clear();
  }

  WorkerBufferList buffer_list() const {
    WorkerBufferList out;
    for (const auto& s : shards_) out.push_back(&s.buffers);
    return out;
  }

  void reduce_gates(StepResult& r) {
    r.gates = reduce_gate_means(*reducer_, buffer_list(), model_->architecture().gate_sizes());
  }

  MultiTaskModel model_;
  const std::vector<TaskSpec>& tasks_;
  Weighting& weighting_;
  EngineOptions options_;
  int copies_;    // data-parallel shards
  int per_copy_;  // threads per shard: its head threads (the first also runs the trunk)
  WorkerPool pool_;
  std::unique_ptr<GradientReducer> reducer_;
  std::vector<Shard> shards_;
  std::vector<MultiTaskModel> replicas_;
  std::vector<at::Tensor> params_;
};

}  // namespace

int model_parallel_copies(const EngineOptions& options) {
  const int per = options.model_threads > 0 ? options.model_threads : options.threads;
  if (per > options.threads || options.threads % per != 0)
    throw std::invalid_argument("model_threads (" + std::to_string(per) + ") must divide threads (" +
                                std::to_string(options.threads) + ")");
  return options.threads / per;
}

std::unique_ptr<GradientEngine> make_task_parallel_engine(MultiTaskModel model, const std::vector<TaskSpec>& tasks,
                                                          Weighting& weighting, EngineOptions options,
                                                          ModelFactory make_replica,
                                                          std::unique_ptr<GradientReducer> reducer) {
  return std::make_unique<TaskParallelEngine>(std::move(model), tasks, weighting, options, make_replica,
                                              std::move(reducer));
}

}  // namespace mtl
