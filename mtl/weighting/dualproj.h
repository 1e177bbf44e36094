// DualProj (torchjd): the average gradient is projected onto the dual cone of the task gradients
// {x : G x >= 0}: u = argmin_{u >= 1/T} u^T M u, result G^T u (M = G G^T regularised as in UPGrad).
// Effective weights (exact): u.
//   YAML:  weighting: {method: dualproj, reg_eps: 0.0001}
//   C++:   mtl::DualProj w(mtl::DualProjOptions().reg_eps(0.0));
#pragma once

#include <torch/arg.h>

#include "mtl/weighting/gradient_method.h"

namespace mtl {

struct DualProjOptions {
  /// Regularisation of the Gram matrix, relative to its mean eigenvalue, >= 0.
  TORCH_ARG(double, reg_eps) = 1e-4;

 public:
  static DualProjOptions from_config(const ConfigNode& options);
};

class DualProj : public GradientWeighting {
 public:
  using Options = DualProjOptions;
  explicit DualProj(DualProjOptions options = {});
  at::Tensor combine(const at::Tensor& G, const std::vector<double>& losses, const StepContext& ctx) override;

 private:
  double reg_eps_;
};

}  // namespace mtl
