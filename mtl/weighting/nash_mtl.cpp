// Nash-MTL (Navon et al., 2022): the Nash bargaining solution d = sum_t a_t g_t with a > 0 solving
// (G G^T) a = 1 / a, computed, as in the authors' code, on the Gram matrix scaled to unit Frobenius norm.
// It is the minimiser of the strictly convex 1/2 a^T M a - sum_t log a_t, found here by Newton's method
// with backtracking (no cvxpy). M gets eps * I (eps = 1e-6 of its norm) so that linearly dependent gradients
// (identical or opposite) still have a solution; tasks with a zero gradient get a_t = 0.
//   weighting: {method: nash_mtl}
#include <cmath>

#include "mtl/config/config_node.h"
#include "mtl/weighting/gradient_method.h"
#include "mtl/weighting/methods.h"

namespace mtl {

namespace {
double barrier(const at::Tensor& M, const at::Tensor& a) {
  return 0.5 * a.dot(M.mv(a)).item<double>() - a.log().sum().item<double>();
}

class NashMtlWeighting : public GradientWeighting {
 public:
  at::Tensor combine(const at::Tensor& G, const std::vector<double>&, const StepContext&) override {
    const int64_t T = G.size(0);
    at::Tensor full = gram_matrix(G);
    at::Tensor weights = at::zeros({T}, at::kDouble);
    std::vector<int64_t> live;
    const double diag_max = full.diagonal().max().item<double>();
    for (int64_t t = 0; t < T; ++t)
      if (full[t][t].item<double>() > 1e-20 * std::max(diag_max, 1e-300)) live.push_back(t);
    if (!live.empty()) {
      at::Tensor idx = at::tensor(live, at::kLong);
      at::Tensor M = full.index_select(0, idx).index_select(1, idx);
      M = M / M.norm().item<double>();
      M = M + 1e-6 * at::eye(M.size(0), M.options());
      at::Tensor a = M.diagonal().rsqrt();
      double fa = barrier(M, a);
      for (int it = 0; it < 200; ++it) {
        at::Tensor grad = M.mv(a) - a.reciprocal();
        if (grad.abs().max().item<double>() < 1e-12 * a.reciprocal().abs().max().item<double>()) break;
        at::Tensor H = M + at::diag(a.pow(-2));
        at::Tensor step = at::linalg_solve(H, grad);
        double s = 1.0;
        at::Tensor next = a - step;
        while ((next <= 0).any().item<bool>() || barrier(M, next) > fa) {
          s *= 0.5;
          next = a - s * step;
          if (s < 1e-20) break;
        }
        a = next;
        fa = barrier(M, a);
      }
      weights.index_copy_(0, idx, a);
    }
    last_weights_.assign(weights.data_ptr<double>(), weights.data_ptr<double>() + T);
    return weighted_rows(G, weights);
  }
};
}  // namespace

std::unique_ptr<Weighting> make_nash_mtl_weighting(const ConfigNode&, const WeightingContext&) {
  return std::make_unique<NashMtlWeighting>();
}

}  // namespace mtl
