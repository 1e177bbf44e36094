// GradNorm (Chen et al., ICML 2018): learned task weights w (start at 1) that equalise the tasks' gradient
// norms on a chosen set W of shared weights, pushed towards each task's relative training rate:
//   G_t = w_t |grad_W L_t|,  G = mean_t G_t,  r_t = (L_t / L_t(0)) / mean_s (L_s / L_s(0)),
//   L_grad = sum_t |G_t - G r_t^alpha|   (the target G r_t^alpha held constant, as in the paper),
// so dL_grad/dw_t = sign(G_t - target_t) |grad_W L_t|. The optimizer updates w with the model; before each
// step w is renormalised to sum to T (clamped at 1e-6 first). The model's gradient is that of
// sum_t w_t L_t (shared and heads). L_t(0) are the full-batch losses of the first step.
//   layer: last  W = the last shared layer (the trunk's last module with parameters; the paper's choice)
//          all   W = every trainable shared parameter (LibMTL's choice)
// In representation space (`space: representation`, as LibMTL's rep_grad) the norms are those of dL_t/dZ for
// the shared representation Z, the output of the last shared layer; `layer` is then unused.
// The norms come from the engine's full-batch T x P gradient matrix, so every thread count gives the same
// weights. w and L(0) are checkpoint state. Effective weights: w (the combined gradient is sum_t w_t g_t).
//   YAML:  weighting: {method: gradnorm, alpha: 1.5, layer: last}
//   C++:   mtl::GradNorm w(2, mtl::GradNormOptions().alpha(1.5).layer("last"));
#pragma once

#include <torch/arg.h>

#include <string>

#include "mtl/weighting/gradient_method.h"

namespace mtl {

struct GradNormOptions {
  /// Strength of the pull towards the relative training rates, >= 0.
  TORCH_ARG(double, alpha) = 1.5;
  /// "last" (the trunk's last layer) or "all" (every shared parameter).
  TORCH_ARG(std::string, layer) = "last";

 public:
  static GradNormOptions from_config(const ConfigNode& options);
};

class GradNorm : public GradientWeighting {
 public:
  using Options = GradNormOptions;
  explicit GradNorm(int64_t tasks, GradNormOptions options = {});
  void set_shared_parameters(const std::vector<SharedParameter>& shared) override;
  std::vector<double> loss_weights(const std::vector<double>& losses, const StepContext& ctx) override;
  at::Tensor combine(const at::Tensor& G, const std::vector<double>& losses, const StepContext& ctx) override;
  std::vector<at::Tensor> parameters() override { return {w_}; }
  void save(torch::serialize::OutputArchive& a) const override;
  void load(torch::serialize::InputArchive& a) override;

 private:
  double alpha_;
  std::string layer_;
  at::Tensor w_;                    // learned task weights
  std::vector<double> initial_;     // L_t(0)
  int64_t begin_ = 0, length_ = 0;  // columns of W in the T x P matrix (length 0: all)
};

}  // namespace mtl
