// Aligned-MTL (Senushkin et al., 2023): aligns the task gradients' principal components so the combined
// update has condition number 1. With M = G G^T = V diag(lambda) V^T (eigenvalues above
// max(lambda) * T * eps kept), B = sqrt(lambda_min) V diag(lambda^-1/2) V^T and the task weights are the
// column sums of B: d = sum_t (sum_s B_st) g_t (as in LibMTL's implementation).
//   weighting: {method: aligned_mtl}
#include <limits>

#include "mtl/config/config_node.h"
#include "mtl/weighting/gradient_method.h"
#include "mtl/weighting/methods.h"

namespace mtl {

namespace {
class AlignedMtlWeighting : public GradientWeighting {
 public:
  at::Tensor combine(const at::Tensor& G, const std::vector<double>&, const StepContext&) override {
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
    last_weights_.assign(w.data_ptr<double>(), w.data_ptr<double>() + T);
    return weighted_rows(G, w);
  }
};
}  // namespace

std::unique_ptr<Weighting> make_aligned_mtl_weighting(const ConfigNode&, const WeightingContext&) {
  return std::make_unique<AlignedMtlWeighting>();
}

}  // namespace mtl
