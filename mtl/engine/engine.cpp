#include "mtl/engine/engine.h"

#include <chrono>
#include <set>

#include "mtl/engine/async_engine.h"
#include "mtl/core/random.h"
#include "mtl/engine/nonfinite.h"
#include "mtl/engine/parallel_engine.h"
#include "mtl/engine/pipeline_engine.h"
#include "mtl/engine/task_parallel_engine.h"
#include "mtl/optim/param_groups.h"

namespace mtl {

at::Tensor task_loss(const TaskSpec& task, const at::Tensor& output, const Batch& batch) {
  auto it = batch.targets.find(task.label.name);
  if (it == batch.targets.end() || !output.defined()) return at::Tensor();
  // Losses are float32 whatever precision the forward pass ran in (trainer.precision: bf16).
  return task.loss(output.scalar_type() == at::kBFloat16 ? output.to(at::kFloat) : output, it->second);
}

std::vector<at::Tensor> task_losses(const std::vector<TaskSpec>& tasks, const std::vector<at::Tensor>& outputs,
                                    const Batch& batch) {
  std::vector<at::Tensor> losses(tasks.size());
  for (size_t t = 0; t < tasks.size(); ++t) losses[t] = task_loss(tasks[t], outputs[t], batch);
  return losses;
}

std::vector<at::Tensor> task_losses(const std::vector<TaskSpec>& tasks, const ModelOutput& out, const Batch& batch) {
  std::vector<at::Tensor> losses = task_losses(tasks, out.outputs, batch);
  for (size_t t = 0; t < losses.size() && t < out.regularizers.size(); ++t)
    if (losses[t].defined() && out.regularizers[t].defined()) losses[t] = losses[t] + out.regularizers[t].to(at::kFloat);
  return losses;
}

std::vector<bool> labels_present(const std::vector<TaskSpec>& tasks, const Batch& batch) {
  std::vector<bool> out(tasks.size());
  for (size_t t = 0; t < tasks.size(); ++t) out[t] = batch.targets.count(tasks[t].label.name) > 0;
  return out;
}

namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// The whole batch in one piece on the calling thread (loss-based weighting only): the reference that the
// parallel engine's gradients are tested against.
class SerialEngine : public GradientEngine {
 public:
  SerialEngine(MultiTaskModel model, const std::vector<TaskSpec>& tasks, Weighting& weighting)
      : model_(std::move(model)), tasks_(tasks), weighting_(weighting) {}

  StepResult compute_gradients(const Batch& batch, const StepContext& ctx) override {
    TORCH_CHECK(weighting_.needs() == GradientKind::kWeightedLoss,
                "the serial engine supports loss-based weighting only");
    for (auto& p : model_->parameters()) p.mutable_grad() = at::Tensor();
    ThreadGeneratorScope rng(StepInfo{0, ctx.step, ctx.epoch}, 0);  // one shard: the parallel engine's shard 0
    ModelOutput out = model_->forward(batch.inputs);
    std::vector<at::Tensor> losses = task_losses(tasks_, out, batch);
    StepResult r;
    r.step = ctx.step;
    r.examples = batch.size;
    r.losses.assign(tasks_.size(), 0.0);
    r.present.assign(tasks_.size(), false);
    for (size_t t = 0; t < tasks_.size(); ++t) {
      if (!losses[t].defined()) continue;
      r.present[t] = true;
      r.losses[t] = losses[t].item<double>();
    }
    r.weights = loss_weights_for_step(weighting_, r.losses, r.present, ctx);
    at::Tensor total;
    for (size_t t = 0; t < tasks_.size(); ++t) {
      if (!r.present[t]) continue;
      at::Tensor term = losses[t] * r.weights[t];
      total = total.defined() ? total + term : term;
      r.total_loss += r.weights[t] * r.losses[t];
    }
    if (total.defined()) total.backward();
    return r;
  }

  std::vector<double> batch_losses(const Batch& batch, const StepContext& ctx) override {
    at::NoGradGuard no_grad;
    ThreadGeneratorScope rng(StepInfo{0, ctx.step, ctx.epoch}, 0);
    std::vector<at::Tensor> saved;
    for (const auto& b : model_->buffers()) saved.push_back(b.clone());
    std::vector<at::Tensor> losses = task_losses(tasks_, model_->forward(batch.inputs), batch);
    size_t k = 0;
    for (auto& b : model_->buffers()) b.copy_(saved[k++]);
    std::vector<double> out(tasks_.size(), 0.0);
    for (size_t t = 0; t < tasks_.size(); ++t)
      if (losses[t].defined()) out[t] = losses[t].item<double>();
    return out;
  }

 private:
  MultiTaskModel model_;
  const std::vector<TaskSpec>& tasks_;
  Weighting& weighting_;
};

// The synchronous step: reduced gradients from the parallel engine, then the parameter groups' update.
class SyncEngine : public Engine {
 public:
  SyncEngine(MultiTaskModel model, const std::vector<TaskSpec>& tasks, Weighting& weighting, ParamGroups& groups,
             EngineOptions options, ModelFactory make_replica)
      : model_(std::move(model)), tasks_(tasks), weighting_(weighting), groups_(groups), options_(options),
        make_replica_(std::move(make_replica)) {
    trainable_changed();
  }

  std::vector<StepResult> step(const Batch& batch, const StepContext& ctx) override {
    auto start = Clock::now();
    const double lr = groups_.set_step(ctx.step);
    if (options_.keep_state_on_skip) state_before_.capture(weighting_);
    StepResult r = gradients_->compute_gradients(batch, ctx);
    auto computed = Clock::now();
    r.lr = lr;
    r.nonfinite = find_nonfinite(r, tasks_, named_parameters_, groups_.optimizer());
    if (!r.nonfinite.empty()) {  // not applied: the weights (and, when kept, the weighting state) stay
      if (options_.keep_state_on_skip) state_before_.restore(weighting_);
      r.timings.gradients = seconds_between(start, computed);
      return {std::move(r)};
    }
    r.penalty = groups_.before_step();
    groups_.optimizer().step();
    groups_.after_step();
    if (weighting_.needs_losses_after_step())
      after_step_for_step(weighting_, gradients_->batch_losses(batch, ctx), r.present, ctx);
    r.timings.gradients = seconds_between(start, computed);
    r.timings.update = seconds_between(computed, Clock::now());
    return {std::move(r)};
  }

  void trainable_changed() override {
    named_parameters_ = model_->named_parameters();  // built once, not at every step's non-finite check
    weighting_.set_shared_parameters(trainable_shared_parameters(*model_));
    gradients_.reset();  // one pool at a time
    switch (options_.model_parallel) {
      case ModelParallel::kNone: gradients_ = make_parallel_engine(model_, tasks_, weighting_, options_, make_replica_); break;
      case ModelParallel::kTasks: gradients_ = make_task_parallel_engine(model_, tasks_, weighting_, options_, make_replica_); break;
      case ModelParallel::kPipeline: gradients_ = make_pipeline_engine(model_, tasks_, weighting_, options_); break;
    }
  }

 private:
  MultiTaskModel model_;
  const std::vector<TaskSpec>& tasks_;
  Weighting& weighting_;
  ParamGroups& groups_;
  EngineOptions options_;
  ModelFactory make_replica_;
  std::unique_ptr<GradientEngine> gradients_;
  torch::OrderedDict<std::string, at::Tensor> named_parameters_;
  StateSnapshot state_before_;
};

}  // namespace

std::vector<SharedParameter> trainable_shared_parameters(MultiTaskModelImpl& model) {
  std::vector<SharedParameter> shared;
  std::vector<std::string> names = model.shared_parameter_names();
  std::set<std::string> is_shared(names.begin(), names.end());
  for (const auto& kv : model.named_parameters())
    if (kv.value().requires_grad() && is_shared.count(kv.key())) shared.push_back({kv.key(), kv.value().numel()});
  return shared;
}

std::unique_ptr<GradientEngine> make_serial_engine(MultiTaskModel model, const std::vector<TaskSpec>& tasks,
                                                   Weighting& weighting) {
  return std::make_unique<SerialEngine>(std::move(model), tasks, weighting);
}

std::unique_ptr<Engine> make_sync_engine(MultiTaskModel model, const std::vector<TaskSpec>& tasks,
                                         Weighting& weighting, ParamGroups& groups, EngineOptions options,
                                         ModelFactory make_replica) {
  TORCH_CHECK(options.threads >= 1, "at least one worker thread");
  return std::make_unique<SyncEngine>(std::move(model), tasks, weighting, groups, options, std::move(make_replica));
}

std::unique_ptr<Engine> make_engine(MultiTaskModel model, const std::vector<TaskSpec>& tasks, Weighting& weighting,
                                    ParamGroups& groups, EngineOptions options, ModelFactory make_replica) {
  if (options.async) return make_async_engine(std::move(model), tasks, weighting, groups, options, std::move(make_replica));
  return make_sync_engine(std::move(model), tasks, weighting, groups, options, std::move(make_replica));
}

}  // namespace mtl
