// UPGrad (Quinton & Rey, 2024; torchjd): every task gradient is projected onto the dual cone of the task
// gradients {x : G x >= 0} (where no task's loss increases to first order), and the projections are
// averaged. Projecting g_i = G^T e_i is the quadratic program u_i = argmin_{u >= e_i} u^T M u with
// M = G G^T, and the result is G^T mean_i(u_i). M is regularised by reg_eps * trace(M) / T * I (so that
// dependent gradients have a unique solution). Effective weights (exact): mean_i(u_i).
//   YAML:  weighting: {method: upgrad, reg_eps: 0.0001}
//   C++:   mtl::UpGrad w(mtl::UpGradOptions().reg_eps(1e-4));
#pragma once

#include <torch/arg.h>

#include "mtl/weighting/gradient_method.h"

namespace mtl {

struct UpGradOptions {
  /// Regularisation of the Gram matrix, relative to its mean eigenvalue, >= 0.
  TORCH_ARG(double, reg_eps) = 1e-4;

 public:
  static UpGradOptions from_config(const ConfigNode& options);
};

class UpGrad : public GradientWeighting {
 public:
  using Options = UpGradOptions;
  explicit UpGrad(UpGradOptions options = {});
  at::Tensor combine(const at::Tensor& G, const std::vector<double>& losses, const StepContext& ctx) override;

 private:
  double reg_eps_;
};

}  // namespace mtl
