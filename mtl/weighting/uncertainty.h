// Uncertainty weighting (Kendall, Gal & Cipolla, 2018), in the form LibMTL uses:
//   F = sum_t [ L_t / (2 exp(s_t)) + s_t / 2 ],  s_t = log sigma_t^2 learned with the model.
// Weights w_t = 1 / (2 exp(s_t)); the gradient of F with respect to s_t, 1/2 - L_t / (2 exp(s_t)), is set
// from the full-batch losses each step, so the log-variances are optimised exactly with any thread count.
// The log-variances are trainable parameters (the optimizer updates them) and are saved in checkpoints.
//   YAML:  weighting: {method: uw, init: -0.5}   # initial s_t (LibMTL's default)
//   C++:   mtl::UncertaintyWeighting w(2, mtl::UncertaintyWeightingOptions().init(-0.5));
#pragma once

#include <torch/arg.h>

#include "mtl/weighting/weighting.h"

namespace mtl {

struct UncertaintyWeightingOptions {
  /// Initial log-variance s_t of every task, in [-20, 20].
  TORCH_ARG(double, init) = -0.5;

 public:
  static UncertaintyWeightingOptions from_config(const ConfigNode& options);
};

class UncertaintyWeighting : public Weighting {
 public:
  using Options = UncertaintyWeightingOptions;
  explicit UncertaintyWeighting(int64_t tasks, UncertaintyWeightingOptions options = {});
  std::vector<double> loss_weights(const std::vector<double>& losses, const StepContext& ctx) override;
  std::vector<at::Tensor> parameters() override { return {log_var_}; }
  void save(torch::serialize::OutputArchive& a) const override;
  void load(torch::serialize::InputArchive& a) override;

 private:
  at::Tensor log_var_;  // s_t, float64 [T], requires grad
};

}  // namespace mtl
