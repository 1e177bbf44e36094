#include "mtl/weighting/config.h"

#include <ATen/ATen.h>

namespace mtl {

ConFigOptions ConFigOptions::from_config(const ConfigNode&) { return {}; }

at::Tensor ConFig::combine(const at::Tensor& G, const std::vector<double>&, const StepContext&) {
  const int64_t T = G.size(0);
  at::Tensor g = G.to(at::kDouble);
  at::Tensor norms = g.norm(2, 1);
  at::Tensor live = (norms > 0).nonzero().squeeze(1);
  last_weights_.assign(T, 0.0);
  if (live.numel() == 0) return at::zeros({G.size(1)}, G.options());
  at::Tensor live_norms = norms.index_select(0, live);
  at::Tensor U = g.index_select(0, live) / live_norms.unsqueeze(1);
  // x = U^T b with b = (U U^T)^+ 1: the minimum-norm solution of U x = 1, via the small Gram matrix.
  at::Tensor b = at::linalg_pinv(U.mm(U.t())).mv(at::ones({U.size(0)}, at::kDouble));
  at::Tensor x = U.t().mv(b);
  double xn = x.norm().item<double>();
  if (xn == 0) return at::zeros({G.size(1)}, G.options());
  at::Tensor v = x / xn;
  double length = g.mv(v).sum().item<double>();
  set_last_weights(at::zeros({T}, at::kDouble).index_copy_(0, live, b * (length / xn) / live_norms));
  return (v * length).to(G.scalar_type());
}

}  // namespace mtl
