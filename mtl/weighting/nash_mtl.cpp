#include "mtl/weighting/nash_mtl.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace mtl {

namespace {
double barrier(const std::vector<double>& M, const std::vector<double>& a) {
  const size_t n = a.size();
  double quad = 0, logs = 0;
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < n; ++j) quad += a[i] * M[i * n + j] * a[j];
    logs += std::log(a[i]);
  }
  return 0.5 * quad - logs;
}

// argmin_a 1/2 a^T M a - sum_t log a_t (M positive definite) by damped Newton, in plain float64 (T x T).
at::Tensor bargaining_solution(const at::Tensor& Mt) {
  const std::vector<double> M = small_matrix(Mt);
  const size_t n = static_cast<size_t>(Mt.size(0));
  std::vector<double> a(n), grad(n), next(n);
  for (size_t i = 0; i < n; ++i) a[i] = 1.0 / std::sqrt(M[i * n + i]);
  double fa = barrier(M, a);
  for (int it = 0; it < 200; ++it) {
    double gmax = 0, rmax = 0;
    for (size_t i = 0; i < n; ++i) {
      double Ma = 0;
      for (size_t j = 0; j < n; ++j) Ma += M[i * n + j] * a[j];
      grad[i] = Ma - 1.0 / a[i];
      gmax = std::max(gmax, std::abs(grad[i]));
      rmax = std::max(rmax, std::abs(1.0 / a[i]));
    }
    if (gmax < 1e-12 * rmax) break;
    std::vector<double> H = M, step = grad;
    for (size_t i = 0; i < n; ++i) H[i * n + i] += 1.0 / (a[i] * a[i]);
    if (!solve_spd(H, step)) break;
    double s = 1.0;
    while (true) {
      bool positive = true;
      for (size_t i = 0; i < n; ++i) {
        next[i] = a[i] - s * step[i];
        positive = positive && next[i] > 0;
      }
      if ((positive && barrier(M, next) <= fa) || s < 1e-20) break;
      s *= 0.5;
    }
    a = next;
    fa = barrier(M, a);
  }
  return at::tensor(a, at::kDouble);
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
