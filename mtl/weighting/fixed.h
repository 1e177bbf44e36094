// Fixed task weights ("fixed", alias "ew" for equal weighting): total = sum_t weight_t * L_t, where weight_t
// is each task's `weight` (default 1.0, so "ew" is the plain sum of task losses).
//   YAML:  weighting: {method: ew}            (the weights are the tasks' `weight` entries)
//   C++:   mtl::FixedWeighting w(2, mtl::FixedWeightingOptions().weights({1.0, 0.5}));
#pragma once

#include <torch/arg.h>

#include <vector>

#include "mtl/weighting/weighting.h"

namespace mtl {

struct FixedWeightingOptions {
  /// One weight per task, each finite and >= 0; empty = 1.0 for every task (equal weighting).
  TORCH_ARG(std::vector<double>, weights);

 public:
  /// `ew`/`fixed` have no options of their own; the registry fills `weights` from the tasks' `weight`.
  static FixedWeightingOptions from_config(const ConfigNode& options);
};

class FixedWeighting : public Weighting {
 public:
  using Options = FixedWeightingOptions;
  explicit FixedWeighting(int64_t tasks, FixedWeightingOptions options = {});
  std::vector<double> loss_weights(const std::vector<double>& losses, const StepContext& ctx) override;
  bool weights_ignore_step_losses() const override { return true; }

 private:
  std::vector<double> weights_;
};

}  // namespace mtl
