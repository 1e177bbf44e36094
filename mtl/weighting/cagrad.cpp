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
  at::Tensor b = at::full({T}, 1.0 / static_cast<double>(T), M.options());
  const double g0_norm = std::sqrt(std::max(0.0, M.mean().item<double>()) + 1e-8);
  const double cc = c_ * g0_norm + 1e-8;
  at::Tensor Mb = M.mv(b);
  auto f = [&](const at::Tensor& w) {
    return w.dot(Mb).item<double>() + cc * std::sqrt(w.dot(M.mv(w)).item<double>() + 1e-8);
  };
  auto grad = [&](const at::Tensor& w) {
    at::Tensor Mw = M.mv(w);
    return Mb + (cc / std::sqrt(w.dot(Mw).item<double>() + 1e-8)) * Mw;
  };
  at::Tensor w = minimize_on_simplex(f, grad, b);
  const double gw_norm = std::sqrt(std::max(0.0, w.dot(M.mv(w)).item<double>()));
  const double lambda = cc / (gw_norm + 1e-8);
  at::Tensor eff = (b + lambda * w) / (1.0 + c_ * c_);
  set_last_weights(eff);
  return weighted_rows(G, eff);
}

}  // namespace mtl
