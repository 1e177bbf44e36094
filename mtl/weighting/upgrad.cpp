#include "mtl/weighting/upgrad.h"

#include <ATen/ATen.h>

#include "mtl/config/config_node.h"
#include "mtl/weighting/method_support.h"

namespace mtl {

UpGradOptions UpGradOptions::from_config(const ConfigNode& options) {
  return UpGradOptions().reg_eps(non_negative<double>(options, "reg_eps", 1e-4));
}

UpGrad::UpGrad(UpGradOptions options) : reg_eps_(options.reg_eps()) {
  check_option(reg_eps_ >= 0, "UpGradOptions", "reg_eps", got("expected a number >= 0", reg_eps_));
}

at::Tensor UpGrad::combine(const at::Tensor& G, const std::vector<double>&, const StepContext&) {
  const int64_t T = G.size(0);
  at::Tensor M = regularised_gram(G, reg_eps_);
  at::Tensor w = at::zeros({T}, at::kDouble);
  for (int64_t i = 0; i < T; ++i) {
    at::Tensor lower = at::zeros({T}, at::kDouble);
    lower[i] = 1.0;
    w += box_qp(M, lower) / static_cast<double>(T);
  }
  set_last_weights(w);
  return weighted_rows(G, w);
}

}  // namespace mtl
