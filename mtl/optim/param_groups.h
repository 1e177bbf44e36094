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
  /// them. Throws mtl::Error at a group's config location when its patterns select no parameter.
  ParamGroups(const OptimizerOptions& options, const SchedulerOptions& scheduler, const NamedParameters& model_params,
              const std::vector<std::vector<std::string>>& backbone_blocks,
              const std::vector<at::Tensor>& weighting_params = {});

  torch::optim::Optimizer& optimizer() { return *optimizer_; }
  const std::vector<ResolvedParamGroup>& groups() const { return groups_; }

  /// Sets every group's learning rate for optimizer step `step` (0-based); returns the default group's
  /// rate (the run's lr under its schedule), for logs.
  double set_step(int64_t step, int64_t steps_per_epoch, int64_t total_steps);

  /// After the engine has set the gradients, before optimizer().step(): adds the L1/L2 penalties'
  /// gradients, clips by value, then by each group's norm, then by the norm of all. Only parameters with a
  /// gradient take part (frozen ones and heads of tasks absent from the batch are left alone). Returns the
  /// penalty's value.
  double before_step();

  /// After optimizer().step(): applies the max-norm constraints.
  void after_step();

 private:
  OptimizerOptions options_;
  SchedulerOptions scheduler_;
  std::vector<ResolvedParamGroup> groups_;
  std::vector<size_t> torch_group_owner_;  // LibTorch group -> index in groups_
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
};

/// Scales a gradient list so that its joint L2 norm is at most `max_norm`; returns the norm before.
double clip_gradient_norm(const std::vector<at::Tensor>& grads, double max_norm);

}  // namespace mtl
