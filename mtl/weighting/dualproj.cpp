// DualProj (torchjd): the average gradient is projected onto the dual cone of the task gradients
// {x : G x >= 0}: u = argmin_{u >= 1/T} u^T M u, result G^T u (M = G G^T regularised as in UPGrad).
//   weighting: {method: dualproj, reg_eps: 0.0001}
#include "mtl/config/config_node.h"
#include "mtl/weighting/gradient_method.h"
#include "mtl/weighting/methods.h"

namespace mtl {

namespace {
class DualProjWeighting : public GradientWeighting {
 public:
  explicit DualProjWeighting(double reg_eps) : reg_eps_(reg_eps) {}

  at::Tensor combine(const at::Tensor& G, const std::vector<double>&, const StepContext&) override {
    const int64_t T = G.size(0);
    at::Tensor M = regularised_gram(G, reg_eps_);
    at::Tensor w = box_qp(M, at::full({T}, 1.0 / static_cast<double>(T), at::kDouble));
    last_weights_.assign(w.data_ptr<double>(), w.data_ptr<double>() + T);
    return weighted_rows(G, w);
  }

 private:
  double reg_eps_;
};
}  // namespace

std::unique_ptr<Weighting> make_dualproj_weighting(const ConfigNode& options, const WeightingContext&) {
  return std::make_unique<DualProjWeighting>(non_negative<double>(options, "reg_eps", 1e-4));
}

}  // namespace mtl
