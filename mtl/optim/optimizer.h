// Optimizers and learning-rate schedules from the `optimizer:` and `scheduler:` config sections.
//   optimizer: {type: sgd, lr: 0.01, momentum: 0.9, nesterov: false, weight_decay: 0.0}
//   optimizer: {type: adamw, lr: 0.001, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0.01}
//   scheduler: {type: cosine, warmup_steps: 100, min_lr: 0.0}
// Schedules are evaluated per optimizer step; `step_size` and `milestones` count epochs.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/optim/optimizer.h>

#include <memory>
#include <string>
#include <vector>

namespace mtl {

class ConfigNode;

struct OptimizerOptions {
  std::string type = "sgd";  // sgd | adam | adamw
  double lr = 0.01;
  double momentum = 0.0;
  bool nesterov = false;
  double weight_decay = 0.0;
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
};
OptimizerOptions parse_optimizer_options(const ConfigNode& node);
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimizerOptions& options,
                                                        const std::vector<at::Tensor>& params);

struct SchedulerOptions {
  std::string type = "constant";  // constant | step | multistep | cosine | linear
  int64_t warmup_steps = 0;       // linear warmup from warmup_start_factor * lr
  double warmup_start_factor = 0.0;
  int64_t step_size = 1;                // epochs, for `step`
  std::vector<int64_t> milestones;      // epochs, for `multistep`
  double gamma = 0.1;                   // decay factor for step/multistep
  double min_lr = 0.0;                  // floor for cosine/linear (absolute)
};
SchedulerOptions parse_scheduler_options(const ConfigNode& node);

/// Learning rate for optimizer step `step` (0-based), given the base rate and the run's length.
double scheduled_lr(const SchedulerOptions& s, double base_lr, int64_t step, int64_t steps_per_epoch,
                    int64_t total_steps);

/// Sets the learning rate of every parameter group.
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

}  // namespace mtl
