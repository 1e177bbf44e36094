// Parameter groups: every model parameter belongs to one group with its own learning rate, schedule,
// weight decay, explicit L1/L2 penalties, gradient clipping and max-norm constraint, all from `optimizer:`.
//   optimizer:
//     type: adamw
//     lr: 0.001
//     weight_decay: 0.01            # never on biases and norm scales unless decay_bias_and_norm: true
//     backbone_lr_scale: 0.1        # the trunk learns 10x slower ...
//     layer_lr_decay: 0.8           # ... and each block closer to the input 0.8x slower than the next
//     clip_grad_norm: 1.0           # all gradients together
//     groups:                       # the first group whose patterns select a parameter gets it
//       - {name: tagger, params: [heads.tags], lr: 0.01, l2: 1e-4, max_norm: 3.0}
// Groups in order: the configured ones, then "backbone.<block>" (layer_lr_decay) or "backbone"
// (backbone_lr_scale), then "default" (everything else), then "weighting" (a weighting method's own
// parameters: the run's rate, no decay, no penalties). Each group becomes one or two LibTorch parameter
// groups (with and without weight decay).
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/optim/optimizer.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "mtl/optim/optimizer.h"

namespace mtl {

using NamedParameters = std::vector<std::pair<std::string, at::Tensor>>;

struct ResolvedParamGroup {
  std::string name;
  std::vector<std::string> names;  // parameter names, in model order
  std::vector<at::Tensor> params;
  std::vector<bool> decayed;       // per parameter: weight decay applies
  double lr = 0.0;                 // base rate (before the schedule)
  double weight_decay = 0.0;
  Regularisation regularisation;
  SchedulerOptions scheduler;
};

class ParamGroups {
 public:
  /// Assigns `model_params` (named as in the model) to groups; `backbone_blocks` as freezing.h computes
  /// them; `trunk`: the name patterns backbone_lr_scale applies to (the architecture's modules). Throws
  /// mtl::Error at a group's config location when its patterns select no parameter.
  ParamGroups(const OptimizerOptions& options, const SchedulerOptions& scheduler, const NamedParameters& model_params,
              const std::vector<std::vector<std::string>>& backbone_blocks,
              const std::vector<at::Tensor>& weighting_params = {},
              const std::vector<std::string>& trunk = {"backbone"});

  torch::optim::Optimizer& optimizer() { return *optimizer_; }
  const std::vector<ResolvedParamGroup>& groups() const { return groups_; }

  /// Sets every group's learning rate for optimizer step `step` (0-based); returns the default group's
  /// rate (the run's lr under its schedule), for logs.
  double set_step(int64_t step, int64_t steps_per_epoch, int64_t total_steps);
  /// The run's length for the schedules (steps per epoch, total optimizer steps); set_step(step) uses it.
  void set_horizon(int64_t steps_per_epoch, int64_t total_steps) {
    steps_per_epoch_ = steps_per_epoch;
    total_steps_ = total_steps;
  }
  double set_step(int64_t step) { return set_step(step, steps_per_epoch_, total_steps_); }
  /// SGD only, after set_step: every LibTorch group's rate times `lr_factor`, its momentum set to
  /// `momentum` and its weight decay times `decay_factor` (the async engine's shard updates).
  void scale_step(double lr_factor, double momentum, double decay_factor);

  /// The same groups (names, rates, decay, penalties, schedules) over other tensors: `alias(p)` for every
  /// parameter p, with an optimizer of their own (the async engine's per-worker updates).
  /// The current learning rate of each of `params` (0 for tensors not in any group).
  std::vector<double> parameter_rates(const std::vector<at::Tensor>& params) const;
  const OptimizerOptions& options() const { return options_; }

  ParamGroups twin(const std::function<at::Tensor(const at::Tensor&)>& alias) const;

  /// After the engine has set the gradients, before optimizer().step(): adds the L1/L2 penalties'
  /// gradients, clips by value, then by each group's norm, then by the norm of all. Only parameters with a
  /// gradient take part (frozen ones and heads of tasks absent from the batch are left alone). Returns the
  /// penalty's value.
  double before_step();

  /// After optimizer().step(): applies the max-norm constraints.
  void after_step();

 private:
  ParamGroups() = default;
  void build_optimizer();  // optimizer_ and torch_group_owner_ from groups_

  OptimizerOptions options_;
  SchedulerOptions scheduler_;
  std::vector<ResolvedParamGroup> groups_;
  std::vector<size_t> torch_group_owner_;  // LibTorch group -> index in groups_
  std::vector<double> torch_group_decay_;  // LibTorch group -> its weight decay (before scale_step)
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  int64_t steps_per_epoch_ = 1, total_steps_ = 1;
};

/// Scales a gradient list so that its joint L2 norm is at most `max_norm`; returns the norm before.
double clip_gradient_norm(const std::vector<at::Tensor>& grads, double max_norm);

}  // namespace mtl
