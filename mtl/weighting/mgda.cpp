#include "mtl/weighting/mgda.h"

#include <ATen/ATen.h>

#include "mtl/config/config_node.h"
#include "mtl/weighting/method_support.h"

namespace mtl {

MgdaOptions MgdaOptions::from_config(const ConfigNode& options) {
  std::string norm = options.choice("normalization", std::string("none"), {"none", "l2", "loss", "loss+"});
  int max_iter = positive<int>(options, "max_iter", 250);
  double tol = positive<double>(options, "tol", 1e-5);
  return MgdaOptions().normalization(norm).max_iter(max_iter).tol(tol);
}

Mgda::Mgda(MgdaOptions options) : options_(std::move(options)) {
  const std::string& n = options_.normalization();
  check_option(n == "none" || n == "l2" || n == "loss" || n == "loss+", "MgdaOptions", "normalization",
               got("expected 'none', 'l2', 'loss' or 'loss+'", n));
  check_option(options_.max_iter() > 0, "MgdaOptions", "max_iter", got("expected a positive number", options_.max_iter()));
  check_option(options_.tol() > 0, "MgdaOptions", "tol", got("expected a positive number", options_.tol()));
}

at::Tensor Mgda::combine(const at::Tensor& G, const std::vector<double>& losses, const StepContext&) {
  const at::Tensor M = gram_matrix(G);
  const int64_t T = M.size(0);
  const std::string& norm = options_.normalization();
  at::Tensor norms = M.diagonal().clamp_min(0).sqrt();
  at::Tensor n = at::ones({T}, M.options());
  at::Tensor L = at::tensor(losses, M.options());
  if (norm == "l2") n = norms;
  if (norm == "loss") n = L;
  if (norm == "loss+") n = L * norms;
  n = n.clamp_min(1e-12);
  at::Tensor Mn = M / n.unsqueeze(0) / n.unsqueeze(1);
  at::Tensor a = min_norm_frank_wolfe(Mn, options_.max_iter(), options_.tol());
  at::Tensor w = a / n;
  set_last_weights(w);
  return weighted_rows(G, w);
}

}  // namespace mtl
