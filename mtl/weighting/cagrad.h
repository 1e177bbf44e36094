// CAGrad (Liu et al., 2021), as in the authors' code: with g0 the average gradient and phi = c^2 |g0|^2,
//   w = argmin_{w in simplex} g_w . g0 + sqrt(phi) |g_w|,  g_w = sum_t w_t g_t,
//   d = (g0 + sqrt(phi) / |g_w| g_w) / (1 + c^2)     (rescale 1, the authors' default).
// c in [0, 1): 0 is plain averaging; larger values move further towards the worst-off task.
// The simplex problem is solved by accelerated projected gradient (the authors use SciPy's SLSQP).
// Effective weights (exact): (1/T + lambda w_t) / (1 + c^2), lambda = sqrt(phi) / |g_w|.
//   YAML:  weighting: {method: cagrad, c: 0.5}
//   C++:   mtl::CaGrad w(mtl::CaGradOptions().c(0.4));
#pragma once

#include <torch/arg.h>

#include "mtl/weighting/gradient_method.h"

namespace mtl {

struct CaGradOptions {
  /// Conflict aversion, in [0, 1).
  TORCH_ARG(double, c) = 0.5;

 public:
  static CaGradOptions from_config(const ConfigNode& options);
};

class CaGrad : public GradientWeighting {
 public:
  using Options = CaGradOptions;
  explicit CaGrad(CaGradOptions options = {});
  at::Tensor combine(const at::Tensor& G, const std::vector<double>& losses, const StepContext& ctx) override;

 private:
  double c_;
};

}  // namespace mtl
