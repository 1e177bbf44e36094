#include "mtl/weighting/nash_mtl.h"

#include <ATen/ATen.h>

#include <algorithm>

namespace mtl {

namespace {
double barrier(const at::Tensor& M, const at::Tensor& a) {
  return 0.5 * a.dot(M.mv(a)).item<double>() - a.log().sum().item<double>();
}

// argmin_a 1/2 a^T M a - sum_t log a_t (M positive definite) by damped Newton.
at::Tensor bargaining_solution(const at::Tensor& M) {
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
  return a;
}
}  // namespace

NashMtlOptions NashMtlOptions::from_config(const ConfigNode&) { return {}; }

at::Tensor NashMtl::combine(const at::Tensor& G, const std::vector<double>&, const StepContext&) {
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
    weights.index_copy_(0, idx, bargaining_solution(M));
  }
  set_last_weights(weights);
  return weighted_rows(G, weights);
}

}  // namespace mtl
