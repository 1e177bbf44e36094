#include "mtl/weighting/aligned_mtl.h"

#include <ATen/ATen.h>

#include <limits>

namespace mtl {

AlignedMtlOptions AlignedMtlOptions::from_config(const ConfigNode&) { return {}; }

at::Tensor AlignedMtl::combine(const at::Tensor& G, const std::vector<double>&, const StepContext&) {
  const int64_t T = G.size(0);
  at::Tensor M = gram_matrix(G);
  auto eig = at::linalg_eigh(M);
  at::Tensor lambda = std::get<0>(eig), V = std::get<1>(eig);
  const double tol = lambda.max().item<double>() * static_cast<double>(T) *
                     std::numeric_limits<float>::epsilon();  // LibMTL: torch.finfo() of float32
  at::Tensor keep = (lambda > tol).nonzero().squeeze(1);
  at::Tensor w = at::zeros({T}, at::kDouble);
  if (keep.numel() > 0) {
    at::Tensor l = lambda.index_select(0, keep), v = V.index_select(1, keep);
    at::Tensor B = l.min().sqrt() * v.mm(at::diag(l.rsqrt())).mm(v.t());
    w = B.sum(0);
  }
  set_last_weights(w);
  return weighted_rows(G, w);
}

}  // namespace mtl
