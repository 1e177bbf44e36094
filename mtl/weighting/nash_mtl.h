// Nash-MTL (Navon et al., 2022): the Nash bargaining solution d = sum_t a_t g_t with a > 0 solving
// (G G^T) a = 1 / a, computed, as in the authors' code, on the Gram matrix scaled to unit Frobenius norm.
// It is the minimiser of the strictly convex 1/2 a^T M a - sum_t log a_t, found here by Newton's method
// with backtracking (no cvxpy). M gets eps * I (eps = 1e-6 of its norm) so that linearly dependent gradients
// (identical or opposite) still have a solution; tasks with a zero gradient get a_t = 0.
// Effective weights (exact): a.
//   YAML:  weighting: {method: nash_mtl}
//   C++:   mtl::NashMtl w;
#pragma once

#include "mtl/weighting/gradient_method.h"

namespace mtl {

struct NashMtlOptions {
  /// Nash-MTL has no options.
  static NashMtlOptions from_config(const ConfigNode& options);
};

class NashMtl : public GradientWeighting {
 public:
  using Options = NashMtlOptions;
  explicit NashMtl(NashMtlOptions options = {}) {}
  at::Tensor combine(const at::Tensor& G, const std::vector<double>& losses, const StepContext& ctx) override;
};

}  // namespace mtl
