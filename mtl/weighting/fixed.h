// Fixed task weights ("fixed", alias "ew" for equal weighting): total = sum_t weight_t * L_t, where weight_t
// is each task's `weight` (default 1.0, so "ew" is the plain sum of task losses).
//   weighting: {method: ew}
#pragma once

#include "mtl/weighting/weighting.h"

namespace mtl {

class FixedWeighting : public Weighting {
 public:
  explicit FixedWeighting(std::vector<double> weights);
  std::vector<double> loss_weights(const std::vector<double>& losses, const StepContext& ctx) override;
  bool weights_ignore_step_losses() const override { return true; }

 private:
  std::vector<double> weights_;
};

std::unique_ptr<Weighting> make_fixed_weighting(const ConfigNode& options, const WeightingContext& ctx);

}  // namespace mtl
