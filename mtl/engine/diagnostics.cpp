#include "mtl/engine/diagnostics.h"

#include <cmath>
#include <limits>

#include "mtl/weighting/gradient_method.h"

namespace mtl {

GradientDiagnostics diagnose_task_gradients(const at::Tensor& G, const std::vector<bool>& present) {
  const size_t T = static_cast<size_t>(G.size(0));
  TORCH_CHECK(present.size() == T, "diagnose_task_gradients: one `present` entry per row of G");
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> M = small_matrix(gram_matrix(G));
  GradientDiagnostics d;
  d.norms.assign(T, 0.0);
  d.cosine.assign(T, std::vector<double>(T, nan));
  for (size_t i = 0; i < T; ++i)
    if (present[i]) d.norms[i] = std::sqrt(std::max(0.0, M[i * T + i]));
  int64_t pairs = 0, conflicts = 0;
  for (size_t i = 0; i < T; ++i)
    for (size_t j = 0; j < T; ++j) {
      if (d.norms[i] == 0.0 || d.norms[j] == 0.0) continue;
      d.cosine[i][j] = i == j ? 1.0 : M[i * T + j] / (d.norms[i] * d.norms[j]);
      if (i < j) {
        ++pairs;
        conflicts += d.cosine[i][j] < 0.0;
      }
    }
  d.conflict_share = pairs > 0 ? double(conflicts) / double(pairs) : nan;
  return d;
}

bool is_diagnostic_step(int64_t steps_taken, int64_t every) {
  return every > 0 && (steps_taken == 0 || (steps_taken + 1) % every == 0);
}

}  // namespace mtl
