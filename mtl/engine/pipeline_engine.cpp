#include "mtl/engine/pipeline_engine.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <unordered_map>

#include "mtl/core/random.h"
#include "mtl/core/threads.h"
#include "mtl/engine/replicas.h"
#include "mtl/engine/shard_plan.h"
#include "mtl/engine/task_parallel_engine.h"

namespace mtl {

namespace {

// Tensors handed from one stage's thread to the next (forward) or the previous (backward), in micro-batch
// order. A thread that fails marks the pipes failed, which wakes and stops every thread waiting on them (the
// pool then rethrows the first failure; nothing hangs).
class Pipes {
 public:
  explicit Pipes(size_t n) : queues_(n) {}
  void push(size_t pipe, at::Tensor x) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queues_[pipe].push_back(std::move(x));
    }
    cv_.notify_all();
  }
  at::Tensor pop(size_t pipe) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return failed_ || !queues_[pipe].empty(); });
    if (failed_) throw std::runtime_error("pipeline stopped: another stage failed");
    at::Tensor x = std::move(queues_[pipe].front());
    queues_[pipe].pop_front();
    return x;
  }
  void fail() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      failed_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::deque<at::Tensor>> queues_;
  bool failed_ = false;
};

// One thread's part of one pipeline: a group of consecutive stages, and per micro-batch what backward needs.
struct Part {
  int64_t first = 0, last = 0;     // stages [first, last)
  std::vector<at::Tensor> params;  // trainable parameters of those stages (the last part: and of the heads)
  std::vector<at::Tensor> inputs;  // per micro-batch: the leaf the part started from (undefined for the first)
  std::vector<at::Tensor> outputs;              // per micro-batch: the part's output, with graph
  std::vector<std::vector<at::Tensor>> losses;  // last part, per micro-batch and task: the loss, with graph
  std::vector<at::Tensor> grads;                // per parameter: summed over micro-batches
  std::vector<bool> owned;                      // per parameter: grads[j] is a sum this part made (adds in place)

  // Adds a micro-batch's gradient: the first is kept as autograd returned it (it may be a view or an expanded
  // tensor), the second makes a sum of our own, the rest add into it (no 16 MB allocation per layer each).
  void accumulate(size_t j, const at::Tensor& g) {
    if (!grads[j].defined()) {
      grads[j] = g;
    } else if (owned[j]) {
      grads[j].add_(g);
    } else {
      grads[j] = grads[j] + g;
      owned[j] = true;
    }
  }
};

// One pipeline: the data-parallel shard it trains on, cut into micro-batches.
struct Pipeline {
  std::vector<Part> parts;
  std::vector<Batch> micro;    // micro-batches of the shard
  std::vector<double> shares;  // micro-batch rows / batch rows
  WorkerBuffers buffers;
};

class PipelineEngine : public GradientEngine {
 public:
  PipelineEngine(MultiTaskModel model, const std::vector<TaskSpec>& tasks, Weighting& weighting, EngineOptions options,
                 std::unique_ptr<GradientReducer> reducer)
      : model_(std::move(model)), tasks_(tasks), weighting_(weighting), options_(options),
        copies_(model_parallel_copies(options)), stages_(options.threads / copies_),
        micro_(options.micro_batches > 0 ? options.micro_batches : 4 * stages_),
        pool_(options.threads, [n = options.intra_op_threads](int) { set_intra_op_threads_for_this_thread(n); }),
        reducer_(reducer                ? std::move(reducer)
                 : options.make_reducer ? options.make_reducer()
                                        : std::make_unique<OrderedReducer>()) {
    const std::string why = pipeline_unsupported_reason(*model_, stages_);
    if (!why.empty()) throw std::invalid_argument(why);
    if (weighting_.needs() != GradientKind::kWeightedLoss)
      throw std::invalid_argument("pipeline model parallelism supports loss-based weighting methods only");
    reducer_->use_pool(&pool_);
    params_ = trainable_parameters(*model_);
    index_ = parameter_positions(params_);
    plan_parts();
  }

  StepResult compute_gradients(const Batch& batch, const StepContext& ctx) override {
    const std::vector<int64_t> off = shard_offsets(batch.size, copies_);
    StepResult r;
    r.step = ctx.step;
    r.examples = batch.whole_size();
    for (int k = 0; k < copies_; ++k) {
      Pipeline& p = pipelines_[static_cast<size_t>(k)];
      const Batch shard = batch.slice(off[k], off[k + 1]);
      const std::vector<int64_t> m = shard_offsets(shard.size, static_cast<int>(std::min<int64_t>(micro_, std::max<int64_t>(shard.size, 1))));
      p.micro.clear();
      p.shares.clear();
      for (size_t j = 0; j + 1 < m.size(); ++j) {
        if (m[j + 1] == m[j]) continue;
        p.micro.push_back(shard.slice(m[j], m[j + 1]));
        p.shares.push_back(double(m[j + 1] - m[j]) / double(batch.whole_size()));
      }
      p.buffers.losses.assign(tasks_.size(), 0.0);
      p.buffers.present.assign(tasks_.size(), false);
      p.buffers.grads.assign(params_.size(), at::Tensor());
    }
    run_pipes([&](Pipeline& p, int k, size_t s, Pipes& pipes) { forward(p, k, s, pipes, ctx); });
    r.losses.assign(tasks_.size(), 0.0);
    r.present.assign(tasks_.size(), false);
    reducer_->reduce_losses(buffer_list(), r.losses, r.present);
    r.weights = loss_weights_for_step(weighting_, r.losses, r.present, ctx);
    run_pipes([&](Pipeline& p, int, size_t s, Pipes& pipes) { backward(p, s, pipes, r.weights); });
    for (auto& p : pipelines_)
      for (auto& part : p.parts)
        for (size_t j = 0; j < part.params.size(); ++j)
          if (part.grads[j].defined()) p.buffers.grads[index_.at(part.params[j].unsafeGetTensorImpl())] = part.grads[j];
    reducer_->reduce_gradients(buffer_list(), params_);
    for (size_t t = 0; t < tasks_.size(); ++t)
      if (r.present[t]) r.total_loss += r.weights[t] * r.losses[t];
    return r;
  }

  // The whole model on the whole batch, micro-batch by micro-batch on the calling thread, without gradients.
  std::vector<double> batch_losses(const Batch& batch, const StepContext& ctx) override {
    at::NoGradGuard no_grad;
    const std::vector<int64_t> off = shard_offsets(batch.size, copies_);
    const size_t T = tasks_.size();
    std::vector<WorkerBuffers> parts(static_cast<size_t>(copies_));
    for (int k = 0; k < copies_; ++k) {
      WorkerBuffers& b = parts[static_cast<size_t>(k)];
      b.losses.assign(T, 0.0);
      b.present.assign(T, true);
      if (off[k + 1] == off[k]) continue;
      ThreadGeneratorScope rng(StepInfo{options_.seed, ctx.step, ctx.epoch}, static_cast<uint64_t>(options_.first_shard + k));
      const Batch rows = batch.slice(off[k], off[k + 1]);
      ModelOutput out;
      {
        PrecisionScope autocast(options_.precision);
        out = model_->forward(rows.inputs);
      }
      std::vector<at::Tensor> losses = task_losses(tasks_, out, rows);
      for (size_t t = 0; t < T; ++t)
        if (losses[t].defined()) b.losses[t] = losses[t].item<double>() * double(off[k + 1] - off[k]) / double(batch.whole_size());
    }
    WorkerBufferList list;
    for (const auto& b : parts) list.push_back(&b);
    std::vector<double> out(T, 0.0);
    std::vector<bool> present(T, false);
    reducer_->reduce_losses(list, out, present);
    return out;
  }

 private:
  // Parameters per stage from the architecture's blocks (stage i's parameters are block i's), then the split.
  void plan_parts() {
    const auto blocks = model_->trunk_blocks();
    const int64_t n = static_cast<int64_t>(blocks.size());
    std::vector<std::vector<at::Tensor>> stage_params(static_cast<size_t>(n));
    std::vector<int64_t> counts(static_cast<size_t>(n), 0);
    size_t assigned = 0;
    for (const auto& kv : model_->named_parameters()) {
      for (int64_t i = 0; i < n; ++i) {
        bool mine = false;
        for (const std::string& prefix : blocks[static_cast<size_t>(i)])
          mine |= kv.key() == prefix || kv.key().rfind(prefix + ".", 0) == 0;
        if (!mine) continue;
        counts[static_cast<size_t>(i)] += kv.value().numel();
        if (kv.value().requires_grad()) {
          stage_params[static_cast<size_t>(i)].push_back(kv.value());
          ++assigned;
        }
        break;
      }
    }
    std::vector<at::Tensor> heads;
    for (size_t t = 0; t < model_->num_tasks(); ++t)
      for (const auto& p : model_->head(t)->parameters())
        if (p.requires_grad()) heads.push_back(p);
    if (assigned + heads.size() != params_.size())
      throw std::invalid_argument("pipeline: the backbone has trainable parameters outside its stages' blocks");
    const std::vector<int64_t> starts = split_stages(counts, stages_);
    pipelines_.assign(static_cast<size_t>(copies_), Pipeline());
    for (auto& p : pipelines_) {
      for (int s = 0; s < stages_; ++s) {
        Part part;
        part.first = starts[static_cast<size_t>(s)];
        part.last = starts[static_cast<size_t>(s) + 1];
        for (int64_t i = part.first; i < part.last; ++i)
          part.params.insert(part.params.end(), stage_params[static_cast<size_t>(i)].begin(),
                             stage_params[static_cast<size_t>(i)].end());
        if (s + 1 == stages_) part.params.insert(part.params.end(), heads.begin(), heads.end());
        p.parts.push_back(std::move(part));
      }
    }
  }

  // Runs fn(pipeline, shard, part, pipes) on every thread: thread i runs part i % stages of pipeline i / stages.
  // Pipe 2s carries part s's outputs forward to part s + 1, pipe 2s + 1 part s + 1's input gradients back.
  void run_pipes(const std::function<void(Pipeline&, int, size_t, Pipes&)>& fn) {
    std::vector<std::unique_ptr<Pipes>> pipes;
    for (int k = 0; k < copies_; ++k) pipes.push_back(std::make_unique<Pipes>(2 * static_cast<size_t>(stages_)));
    auto body = [&](int i) {
      const int k = i / stages_;
      Pipes& mine = *pipes[static_cast<size_t>(k)];
      try {
        fn(pipelines_[static_cast<size_t>(k)], k, static_cast<size_t>(i % stages_), mine);
      } catch (...) {
        mine.fail();
        throw;
      }
    };
    if (pool_.size() > 1) return pool_.run(body);
    IntraOpThreadsScope threads(options_.intra_op_threads);
    body(0);
  }

  // Fill: each micro-batch through this part's stages, in order; the last part adds the heads and losses.
  void forward(Pipeline& p, int k, size_t s, Pipes& pipes, const StepContext& ctx) {
    Part& part = p.parts[s];
    const size_t M = p.micro.size();
    const bool last = s + 1 == p.parts.size();
    part.inputs.assign(M, at::Tensor());
    part.outputs.assign(M, at::Tensor());
    part.losses.assign(M, {});
    part.grads.assign(part.params.size(), at::Tensor());
    part.owned.assign(part.params.size(), false);
    torch::AutoGradMode grad_mode(true);
    BackboneImpl& backbone = *model_->backbone();
    for (size_t m = 0; m < M; ++m) {
      const uint64_t stream = (static_cast<uint64_t>(options_.first_shard + k) * M + m) * p.parts.size() + s;
      ThreadGeneratorScope rng(StepInfo{options_.seed, ctx.step, ctx.epoch}, stream);
      at::Tensor x;
      if (s > 0) {
        x = pipes.pop(2 * (s - 1));
        part.inputs[m] = x;
      }
      {
        PrecisionScope autocast(options_.precision);
        for (int64_t i = part.first; i < part.last; ++i)
          x = backbone.stage(i, p.micro[m].inputs, x);
      }
      part.outputs[m] = x;
      if (!last) {
        at::Tensor sent = x.detach();
        if (x.requires_grad()) sent.requires_grad_(true);
        pipes.push(2 * s, sent);
        continue;
      }
      TrunkOutput view;
      view.shared = x;
      view.task.assign(tasks_.size(), x);
      part.losses[m].assign(tasks_.size(), at::Tensor());
      for (size_t t = 0; t < tasks_.size(); ++t) {
        at::Tensor out;
        {
          PrecisionScope autocast(options_.precision);
          out = model_->head_output(t, view);
        }
        at::Tensor loss = task_loss(tasks_[t], out, p.micro[m]);
        if (!loss.defined()) continue;
        part.losses[m][t] = loss;
        p.buffers.losses[t] += loss.item<double>() * p.shares[m];
        p.buffers.present[t] = true;
      }
    }
  }

  // Drain: per micro-batch (in order), the part's backward pass from the gradient of its output (the last part:
  // of sum_t w_t L_t); its parameters' gradients are summed, its input's gradient goes to the part before.
  void backward(Pipeline& p, size_t s, Pipes& pipes, const std::vector<double>& weights) {
    Part& part = p.parts[s];
    const bool last = s + 1 == p.parts.size();
    torch::AutoGradMode grad_mode(true);
    for (size_t m = 0; m < p.micro.size(); ++m) {
      std::vector<at::Tensor> outputs, grad_outputs;
      if (last) {
        at::Tensor objective;
        for (size_t t = 0; t < tasks_.size(); ++t) {
          if (!part.losses[m][t].defined()) continue;
          at::Tensor term = part.losses[m][t] * (weights[t] * p.shares[m]);
          objective = objective.defined() ? objective + term : term;
        }
        if (objective.defined()) outputs.push_back(objective);
      } else {
        at::Tensor dy = pipes.pop(2 * s + 1);
        if (dy.defined() && part.outputs[m].requires_grad()) {
          outputs.push_back(part.outputs[m]);
          grad_outputs.push_back(dy.to(part.outputs[m].scalar_type()));
        }
      }
      const at::Tensor& in = part.inputs[m];
      const bool pass_back = s > 0 && in.defined() && in.requires_grad();
      std::vector<at::Tensor> wrt = part.params;
      if (pass_back) wrt.push_back(in);
      std::vector<at::Tensor> g(wrt.size());
      if (!outputs.empty() && !wrt.empty())
        g = torch::autograd::grad(outputs, wrt, grad_outputs, /*retain_graph=*/false, /*create_graph=*/false,
                                  /*allow_unused=*/true);
      for (size_t j = 0; j < part.params.size(); ++j)
        if (g[j].defined()) part.accumulate(j, g[j]);
      if (s > 0) pipes.push(2 * (s - 1) + 1, pass_back ? g.back() : at::Tensor());
      part.outputs[m] = at::Tensor();
      part.inputs[m] = at::Tensor();
      if (last) part.losses[m].clear();
    }
  }

  WorkerBufferList buffer_list() const {
    WorkerBufferList out;
    for (const auto& p : pipelines_) out.push_back(&p.buffers);
    return out;
  }

  MultiTaskModel model_;
  const std::vector<TaskSpec>& tasks_;
  Weighting& weighting_;
  EngineOptions options_;
  int copies_;     // pipelines (data-parallel shards)
  int stages_;     // threads per pipeline
  int64_t micro_;  // micro-batches per shard
  WorkerPool pool_;
  std::unique_ptr<GradientReducer> reducer_;
  std::vector<at::Tensor> params_;
  std::unordered_map<const void*, size_t> index_;
  std::vector<Pipeline> pipelines_;
};

}  // namespace

std::string pipeline_unsupported_reason(const MultiTaskModelImpl& model, int stages) {
  if (model.architecture().name() != "hps")
    return "pipeline model parallelism needs model.architecture hps, not " + model.architecture().name();
  const BackboneImpl& backbone = *model.backbone();
  const int64_t n = backbone.num_stages();
  if (n == 0) return "pipeline model parallelism needs a backbone that runs in stages (mlp, lenet, resnet, transformer, "
                     "resnet18..., vit_...); this one does not";
  if (static_cast<int64_t>(model.trunk_blocks().size()) != n)
    return "pipeline model parallelism: the backbone's blocks do not match its stages";
  if (n < stages)
    return "pipeline model parallelism over " + std::to_string(stages) + " threads needs as many stages; the backbone has " +
           std::to_string(n);
  if (!model.buffers().empty())
    return "pipeline model parallelism needs a backbone without BatchNorm (micro-batches would change its "
           "statistics); use norm: none or data parallelism";
  for (size_t t = 0; t < model.num_tasks(); ++t)
    if (model.head(t)->token_level() || model.head(t)->dense())
      return "pipeline model parallelism gives the heads the backbone's pooled features; task " + model.task_names()[t] +
             "'s head reads " + (model.head(t)->dense() ? "feature maps" : "per-token features");
  return "";
}

std::vector<int64_t> split_stages(const std::vector<int64_t>& stage_params, int groups) {
  const size_t n = stage_params.size(), g = static_cast<size_t>(groups);
  TORCH_CHECK(groups >= 1 && g <= n, "split_stages: ", groups, " groups of ", n, " stages");
  std::vector<int64_t> prefix(n + 1, 0);
  for (size_t i = 0; i < n; ++i) prefix[i + 1] = prefix[i] + stage_params[i];
  // best[j][i]: the smallest largest group of stages [0, i) in j groups; cut[j][i]: where its last group starts.
  const int64_t inf = std::numeric_limits<int64_t>::max();
  std::vector<std::vector<int64_t>> best(g + 1, std::vector<int64_t>(n + 1, inf));
  std::vector<std::vector<size_t>> cut(g + 1, std::vector<size_t>(n + 1, 0));
  best[0][0] = 0;
  for (size_t j = 1; j <= g; ++j)
    for (size_t i = j; i <= n; ++i)
      for (size_t c = j - 1; c < i; ++c) {
        if (best[j - 1][c] == inf) continue;
        const int64_t v = std::max(best[j - 1][c], prefix[i] - prefix[c]);
        if (v < best[j][i]) {
          best[j][i] = v;
          cut[j][i] = c;
        }
      }
  std::vector<int64_t> starts(g + 1);
  starts[g] = static_cast<int64_t>(n);
  for (size_t j = g, i = n; j > 0; --j) {
    i = cut[j][i];
    starts[j - 1] = static_cast<int64_t>(i);
  }
  return starts;
}

std::unique_ptr<GradientEngine> make_pipeline_engine(MultiTaskModel model, const std::vector<TaskSpec>& tasks,
                                                     Weighting& weighting, EngineOptions options,
                                                     std::unique_ptr<GradientReducer> reducer) {
  return std::make_unique<PipelineEngine>(std::move(model), tasks, weighting, options, std::move(reducer));
}

}  // namespace mtl
