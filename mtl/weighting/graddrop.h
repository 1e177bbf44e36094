// GradDrop, gradient sign dropout (Chen et al., 2020): per coordinate, the sign purity
// P = (1 + sum_t g_t / sum_t |g_t|) / 2 and a uniform draw U decide which sign survives: task t keeps its
// component where (P > U and g_t > 0) or (P < U and g_t < 0); the result is the sum of the kept components
// (with `leak` l, a dropped component still contributes l times itself). The paper applies it to the
// gradient of a shared activation; here it applies to the shared parameters' gradients. U is drawn from
// (seed, step): the same for any thread count.
// Effective weights: the masks act per coordinate, so the result is in general no combination of the task
// gradients; the logged weights are its least-squares coefficients on them (least_squares_weights).
//   YAML:  weighting: {method: graddrop, leak: 0.0, seed: 0}
//   C++:   mtl::GradDrop w(mtl::GradDropOptions().leak(0.1).seed(3));
#pragma once

#include <torch/arg.h>

#include <cstdint>

#include "mtl/weighting/gradient_method.h"

namespace mtl {

struct GradDropOptions {
  /// Fraction of a dropped component that still passes, in [0, 1].
  TORCH_ARG(double, leak) = 0.0;
  /// Seed of the per-step draws, >= 0.
  TORCH_ARG(int64_t, seed) = 0;

 public:
  static GradDropOptions from_config(const ConfigNode& options);
};

class GradDrop : public GradientWeighting {
 public:
  using Options = GradDropOptions;
  explicit GradDrop(GradDropOptions options = {});
  at::Tensor combine(const at::Tensor& G, const std::vector<double>& losses, const StepContext& ctx) override;

 private:
  double leak_;
  uint64_t seed_;
};

/// GradDrop's combination for a given uniform draw U [P] (exposed for tests), in G's dtype.
at::Tensor graddrop_combine(const at::Tensor& G, const at::Tensor& U, double leak);

}  // namespace mtl
