#include "mtl/weighting/fixed.h"

#include "mtl/config/config_node.h"

namespace mtl {

FixedWeighting::FixedWeighting(std::vector<double> weights) : weights_(std::move(weights)) {
  last_weights_ = weights_;
}

std::vector<double> FixedWeighting::loss_weights(const std::vector<double>& losses, const StepContext& ctx) {
  last_weights_ = ctx.select(weights_);
  return last_weights_;
}

std::unique_ptr<Weighting> make_fixed_weighting(const ConfigNode& options, const WeightingContext& ctx) {
  return std::make_unique<FixedWeighting>(ctx.task_weights);
}

}  // namespace mtl
