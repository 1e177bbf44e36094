// IMTL-G, the gradient part of impartial multi-task learning (Liu et al., 2021): weights a with sum 1 such
// that the combined gradient d = sum_t a_t g_t has equal projections onto every task's unit gradient u_t:
//   a_{2..T} = g_1 U^T (D U^T)^+,  a_1 = 1 - sum a_{2..T},  D_t = g_1 - g_t,  U_t = u_1 - u_t.
// (Pseudo-inverse: identical gradients give a = e_1, i.e. d = g_1.) Tasks with a zero gradient have no
// direction to be fair to: they get a_t = 0 and the others are solved for.
//   weighting: {method: imtl}
#include "mtl/config/config_node.h"
#include "mtl/weighting/gradient_method.h"
#include "mtl/weighting/methods.h"

namespace mtl {

namespace {
class ImtlWeighting : public GradientWeighting {
 public:
  at::Tensor combine(const at::Tensor& G, const std::vector<double>&, const StepContext&) override {
    const int64_t T = G.size(0);
    at::Tensor all = G.to(at::kDouble);
    at::Tensor norms = all.norm(2, 1);
    std::vector<int64_t> live;
    for (int64_t t = 0; t < T; ++t)
      if (norms[t].item<double>() > 0) live.push_back(t);
    at::Tensor a = at::zeros({T}, at::kDouble);
    if (live.size() == 1) a[live[0]] = 1.0;
    if (live.size() > 1) {
      at::Tensor idx = at::tensor(live, at::kLong);
      at::Tensor g = all.index_select(0, idx);
      at::Tensor u = g / norms.index_select(0, idx).unsqueeze(1);
      at::Tensor D = g[0].unsqueeze(0) - g.slice(0, 1);
      at::Tensor U = u[0].unsqueeze(0) - u.slice(0, 1);
      at::Tensor rest = g[0].unsqueeze(0).mm(U.t()).mm(at::linalg_pinv(D.mm(U.t()))).squeeze(0);
      at::Tensor sub = at::empty({static_cast<int64_t>(live.size())}, at::kDouble);
      sub.slice(0, 1).copy_(rest);
      sub[0] = 1.0 - rest.sum().item<double>();
      a.index_copy_(0, idx, sub);
    }
    last_weights_.assign(a.data_ptr<double>(), a.data_ptr<double>() + T);
    return weighted_rows(G, a);
  }
};
}  // namespace

std::unique_ptr<Weighting> make_imtl_weighting(const ConfigNode&, const WeightingContext&) {
  return std::make_unique<ImtlWeighting>();
}

}  // namespace mtl
