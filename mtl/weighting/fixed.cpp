#include "mtl/weighting/fixed.h"

#include <cmath>

#include "mtl/config/config_node.h"
#include "mtl/weighting/method_support.h"

namespace mtl {

FixedWeightingOptions FixedWeightingOptions::from_config(const ConfigNode&) { return {}; }

FixedWeighting::FixedWeighting(int64_t tasks, FixedWeightingOptions options) : weights_(options.weights()) {
  check_option(tasks >= 0, "FixedWeighting", "tasks", got("expected a task count >= 0", static_cast<double>(tasks)));
  if (weights_.empty()) weights_.assign(static_cast<size_t>(tasks), 1.0);
  check_option(weights_.size() == static_cast<size_t>(tasks), "FixedWeightingOptions", "weights",
               "expected one weight per task (" + std::to_string(tasks) + "), got " + std::to_string(weights_.size()));
  for (double w : weights_)
    check_option(std::isfinite(w) && w >= 0, "FixedWeightingOptions", "weights", got("expected weights >= 0", w));
  last_weights_ = weights_;
}

std::vector<double> FixedWeighting::loss_weights(const std::vector<double>&, const StepContext& ctx) {
  last_weights_ = ctx.select(weights_);
  return last_weights_;
}

}  // namespace mtl
