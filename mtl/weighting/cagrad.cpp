#include "mtl/weighting/cagrad.h"

#include <ATen/ATen.h>

#include <cmath>

#include "mtl/config/config_node.h"
#include "mtl/weighting/method_support.h"

namespace mtl {

CaGradOptions CaGradOptions::from_config(const ConfigNode& options) {
  double c = options.get<double>("c", 0.5);
  options.check(c >= 0 && c < 1, "c", "expected a value in [0, 1), got " + std::to_string(c));
  return CaGradOptions().c(c);
}

CaGrad::CaGrad(CaGradOptions options) : c_(options.c()) {
  check_option(c_ >= 0 && c_ < 1, "CaGradOptions", "c", got("expected a value in [0, 1)", c_));
}

at::Tensor CaGrad::combine(const at::Tensor& G, const std::vector<double>&, const StepContext&) {
  const int64_t T = G.size(0);
  at::Tensor M = gram_matrix(G);
  const std::vector<double> m = small_matrix(M);
  const size_t n = static_cast<size_t>(T);
  auto mv = [&](const std::vector<double>& x) {
    std::vector<double> out(n, 0.0);
    for (size_t i = 0; i < n; ++i)
      for (size_t j = 0; j < n; ++j) out[i] += m[i * n + j] * x[j];
    return out;
  };
  auto dot = [](const std::vector<double>& a, const std::vector<double>& b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
  };
  const std::vector<double> b(n, 1.0 / static_cast<double>(T));
  double mean = 0;
  for (double v : m) mean += v / static_cast<double>(m.size());
  const double g0_norm = std::sqrt(std::max(0.0, mean) + 1e-8);
  const double cc = c_ * g0_norm + 1e-8;
  const std::vector<double> Mb = mv(b);
  auto f = [&](const std::vector<double>& w) { return dot(w, Mb) + cc * std::sqrt(dot(w, mv(w)) + 1e-8); };
  auto grad = [&](const std::vector<double>& w) {
    std::vector<double> Mw = mv(w), out(n);
    const double scale = cc / std::sqrt(dot(w, Mw) + 1e-8);
    for (size_t i = 0; i < n; ++i) out[i] = Mb[i] + scale * Mw[i];
    return out;
  };
  const std::vector<double> w = minimize_on_simplex(f, grad, b);
  const double gw_norm = std::sqrt(std::max(0.0, dot(w, mv(w))));
  const double lambda = cc / (gw_norm + 1e-8);
  at::Tensor eff = at::empty({T}, at::kDouble);
  for (size_t i = 0; i < n; ++i) eff[static_cast<int64_t>(i)] = (b[i] + lambda * w[i]) / (1.0 + c_ * c_);
  set_last_weights(eff);
  return weighted_rows(G, eff);
}

}  // namespace mtl
