#include "mtl/engine/engine.h"

namespace mtl {

std::vector<at::Tensor> task_losses(const std::vector<TaskSpec>& tasks, const std::vector<at::Tensor>& outputs,
                                    const Batch& batch) {
  std::vector<at::Tensor> losses(tasks.size());
  for (size_t t = 0; t < tasks.size(); ++t) {
    auto it = batch.targets.find(tasks[t].label.name);
    if (it == batch.targets.end() || !outputs[t].defined()) continue;
    losses[t] = tasks[t].loss(outputs[t], it->second);
  }
  return losses;
}

std::vector<bool> labels_present(const std::vector<TaskSpec>& tasks, const Batch& batch) {
  std::vector<bool> out(tasks.size());
  for (size_t t = 0; t < tasks.size(); ++t) out[t] = batch.targets.count(tasks[t].label.name) > 0;
  return out;
}

namespace {

class SerialEngine : public GradientEngine {
 public:
  SerialEngine(MultiTaskModel model, const std::vector<TaskSpec>& tasks, Weighting& weighting)
      : model_(std::move(model)), tasks_(tasks), weighting_(weighting) {}

  StepResult compute_gradients(const Batch& batch, const StepContext& ctx) override {
    TORCH_CHECK(weighting_.needs() == GradientKind::kWeightedLoss,
                "the serial engine supports loss-based weighting only");
    for (auto& p : model_->parameters()) p.mutable_grad() = at::Tensor();
    ModelOutput out = model_->forward(batch.inputs);
    std::vector<at::Tensor> losses = task_losses(tasks_, out.outputs, batch);
    StepResult r;
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

  std::vector<double> batch_losses(const Batch& batch, const StepContext&) override {
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> saved;
    for (const auto& b : model_->buffers()) saved.push_back(b.clone());
    std::vector<at::Tensor> losses = task_losses(tasks_, model_->forward(batch.inputs).outputs, batch);
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

}  // namespace

std::unique_ptr<GradientEngine> make_serial_engine(MultiTaskModel model, const std::vector<TaskSpec>& tasks,
                                                   Weighting& weighting) {
  return std::make_unique<SerialEngine>(std::move(model), tasks, weighting);
}

}  // namespace mtl
