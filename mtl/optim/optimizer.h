// Optimizers and learning-rate schedules from the `optimizer:` and `scheduler:` config sections.
//   optimizer: {type: sgd, lr: 0.01, momentum: 0.9, nesterov: false, weight_decay: 0.0}
//   optimizer: {type: adamw, lr: 0.001, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0.01}
//   scheduler: {type: cosine, warmup_steps: 100, min_lr: 0.0}
// Schedules are evaluated per optimizer step; `step_size` and `milestones` count epochs.
// Parameter groups, penalties, clipping and constraints (optimizer.groups etc.): mtl/optim/param_groups.h.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/optim/optimizer.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mtl {

class ConfigNode;

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

/// Penalties and constraints of a parameter group. Set at the top of `optimizer:` they hold for every group
/// (clip_grad_norm there clips the norm of all gradients together); a group may override each.
struct Regularisation {
  double l1 = 0.0;               // explicit penalty l1 * sum |w| (gradient l1 * sign(w))
  double l2 = 0.0;               // explicit penalty l2 * sum w^2 (gradient 2 l2 w), unlike weight_decay
                                 // added to the gradient before the optimizer sees it
  double clip_grad_value = 0.0;  // clamp every gradient element to [-v, v]
  double clip_grad_norm = 0.0;   // scale the gradients so that their joint L2 norm is at most this
  double max_norm = 0.0;         // after each step: every weight row (dim-0 slice of a >= 2-D weight:
                                 // one output unit, one filter) has L2 norm at most this
  bool any() const { return l1 > 0 || l2 > 0 || clip_grad_value > 0 || clip_grad_norm > 0 || max_norm > 0; }
};

/// One `optimizer.groups` entry: the parameters its name patterns select (the first matching group wins).
struct ParamGroupOptions {
  std::string name;
  std::vector<std::string> params;  // name patterns (mtl/core/name_pattern.h)
  double lr = 0.0;                  // resolved: `lr`, or the optimizer's lr times `lr_scale`
  double weight_decay = 0.0;
  Regularisation regularisation;
  std::optional<SchedulerOptions> scheduler;  // own schedule; default: the run's, scaled to this lr
  std::string where;                          // config location, for errors found once the model exists
};

struct OptimizerOptions {
  std::string type = "sgd";  // sgd | adam | adamw
  double lr = 0.01;
  double momentum = 0.0;
  bool nesterov = false;
  double weight_decay = 0.0;
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
  bool decay_bias_and_norm = false;  // weight decay also on 1-D parameters (biases, norm scales)
  double backbone_lr_scale = 1.0;    // the backbone's rate relative to lr
  double layer_lr_decay = 1.0;       // backbone block i of K gets lr * backbone_lr_scale * decay^(K - i)
  Regularisation regularisation;     // defaults of every group (clip_grad_norm: all gradients together)
  std::vector<ParamGroupOptions> groups;
  std::string where;                 // the `optimizer:` section's location
};
OptimizerOptions parse_optimizer_options(const ConfigNode& node);
/// One optimizer over `params` with the options' rate and weight decay (groups are ParamGroups' business).
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimizerOptions& options,
                                                        const std::vector<at::Tensor>& params);
/// An optimizer of the options' type over groups with their own rate and weight decay.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimizerOptions& options,
                                                        std::vector<std::vector<at::Tensor>> groups,
                                                        const std::vector<std::pair<double, double>>& lr_and_decay);

/// Learning rate for optimizer step `step` (0-based), given the base rate and the run's length.
double scheduled_lr(const SchedulerOptions& s, double base_lr, int64_t step, int64_t steps_per_epoch,
                    int64_t total_steps);

}  // namespace mtl
