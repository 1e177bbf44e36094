// ConFIG, conflict-free inverse gradients (Liu et al., 2024): the direction v makes equal positive angles
// with every task gradient, v = x / |x| with x = U^+ 1 (U the unit task gradients, U^+ its pseudo-inverse),
// and the length is the sum of the gradients' projections on it: d = (sum_t g_t . v) v.
// Zero gradients are left out of U.
// Effective weights (exact): x = U^T (U U^T)^+ 1 = sum_t b_t g_t / |g_t| with b = (U U^T)^+ 1, so
// d = sum_t a_t g_t with a_t = (sum_s g_s . v) b_t / (|g_t| |x|), and a_t = 0 for a zero gradient.
// (The class is ConFig, after the paper's name; mtl::Config is the YAML configuration.)
//   YAML:  weighting: {method: config}
//   C++:   mtl::ConFig w;
#pragma once

#include "mtl/weighting/gradient_method.h"

namespace mtl {

struct ConFigOptions {
  /// ConFIG has no options.
  static ConFigOptions from_config(const ConfigNode& options);
};

class ConFig : public GradientWeighting {
 public:
  using Options = ConFigOptions;
  explicit ConFig(ConFigOptions options = {}) {}
  at::Tensor combine(const at::Tensor& G, const std::vector<double>& losses, const StepContext& ctx) override;
};

}  // namespace mtl
