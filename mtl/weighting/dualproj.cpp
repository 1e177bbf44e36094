#include "mtl/weighting/dualproj.h"

#include <ATen/ATen.h>

#include "mtl/config/config_node.h"
#include "mtl/weighting/method_support.h"

namespace mtl {

DualProjOptions DualProjOptions::from_config(const ConfigNode& options) {
  return DualProjOptions().reg_eps(non_negative<double>(options, "reg_eps", 1e-4));
}

DualProj::DualProj(DualProjOptions options) : reg_eps_(options.reg_eps()) {
  check_option(reg_eps_ >= 0, "DualProjOptions", "reg_eps", got("expected a number >= 0", reg_eps_));
}

at::Tensor DualProj::combine(const at::Tensor& G, const std::vector<double>&, const StepContext&) {
  const int64_t T = G.size(0);
  at::Tensor M = regularised_gram(G, reg_eps_);
  at::Tensor w = box_qp(M, at::full({T}, 1.0 / static_cast<double>(T), at::kDouble));
  set_last_weights(w);
  return weighted_rows(G, w);
}

}  // namespace mtl
