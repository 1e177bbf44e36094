// Aligned-MTL (Senushkin et al., 2023): aligns the task gradients' principal components so the combined
// update has condition number 1. With M = G G^T = V diag(lambda) V^T (eigenvalues above
// max(lambda) * T * eps kept), B = sqrt(lambda_min) V diag(lambda^-1/2) V^T and the task weights are the
// column sums of B: d = sum_t (sum_s B_st) g_t (as in LibMTL's implementation). Effective weights (exact):
// the column sums of B.
//   YAML:  weighting: {method: aligned_mtl}
//   C++:   mtl::AlignedMtl w;
#pragma once

#include "mtl/weighting/gradient_method.h"

namespace mtl {

struct AlignedMtlOptions {
  /// Aligned-MTL has no options.
  static AlignedMtlOptions from_config(const ConfigNode& options);
};

class AlignedMtl : public GradientWeighting {
 public:
  using Options = AlignedMtlOptions;
  explicit AlignedMtl(AlignedMtlOptions options = {}) {}
  at::Tensor combine(const at::Tensor& G, const std::vector<double>& losses, const StepContext& ctx) override;
};

}  // namespace mtl
