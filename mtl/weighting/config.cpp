// ConFIG, conflict-free inverse gradients (Liu et al., 2024): the direction v makes equal positive angles
// with every task gradient, v = x / |x| with x = U^+ 1 (U the unit task gradients, U^+ its pseudo-inverse),
// and the length is the sum of the gradients' projections on it: d = (sum_t g_t . v) v.
// Zero gradients are left out of U.
//   weighting: {method: config}
#include "mtl/config/config_node.h"
#include "mtl/weighting/gradient_method.h"
#include "mtl/weighting/methods.h"

namespace mtl {

namespace {
class ConfigWeighting : public GradientWeighting {
 public:
  at::Tensor combine(const at::Tensor& G, const std::vector<double>&, const StepContext&) override {
    const int64_t T = G.size(0);
    at::Tensor g = G.to(at::kDouble);
    at::Tensor norms = g.norm(2, 1);
    at::Tensor live = (norms > 0).nonzero().squeeze(1);
    last_weights_.assign(T, 1.0);
    if (live.numel() == 0) return at::zeros({G.size(1)}, G.options());
    at::Tensor U = g.index_select(0, live) / norms.index_select(0, live).unsqueeze(1);
    // x = U^T (U U^T)^+ 1: the minimum-norm solution of U x = 1, via the small Gram matrix.
    at::Tensor x = U.t().mv(at::linalg_pinv(U.mm(U.t())).mv(at::ones({U.size(0)}, at::kDouble)));
    double xn = x.norm().item<double>();
    if (xn == 0) return at::zeros({G.size(1)}, G.options());
    at::Tensor v = x / xn;
    double length = g.mv(v).sum().item<double>();
    return (v * length).to(G.scalar_type());
  }
};
}  // namespace

std::unique_ptr<Weighting> make_config_weighting(const ConfigNode&, const WeightingContext&) {
  return std::make_unique<ConfigWeighting>();
}

}  // namespace mtl
