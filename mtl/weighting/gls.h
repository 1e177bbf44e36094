// GLS, geometric loss strategy (Chennupati et al., 2019): the objective is the geometric mean of the task
// losses, F = (prod_t L_t)^(1/T). The engine backpropagates sum_t w_t L_t with w_t = dF/dL_t = F / (T L_t),
// taken at the full-batch losses, so the gradient is exactly that of F for any number of threads.
// Losses are clamped to >= 1e-12 (a zero loss would zero every weight).
//   YAML:  weighting: {method: gls}
//   C++:   mtl::Gls w;
#pragma once

#include "mtl/weighting/weighting.h"

namespace mtl {

struct GlsOptions {
  /// GLS has no options.
  static GlsOptions from_config(const ConfigNode& options);
};

class Gls : public Weighting {
 public:
  using Options = GlsOptions;
  explicit Gls(GlsOptions options = {}) {}
  std::vector<double> loss_weights(const std::vector<double>& losses, const StepContext& ctx) override;
};

}  // namespace mtl
