// UPGrad (Quinton & Rey, 2024; torchjd): every task gradient is projected onto the dual cone of the task
// gradients {x : G x >= 0} (where no task's loss increases to first order), and the projections are
// averaged. Projecting g_i = G^T e_i is the quadratic program u_i = argmin_{u >= e_i} u^T M u with
// M = G G^T, and the result is G^T mean_i(u_i). M is regularised by reg_eps * trace(M) / T * I (so that
// dependent gradients have a unique solution).
//   weighting: {method: upgrad, reg_eps: 0.0001}
#include "mtl/config/config_node.h"
#include "mtl/weighting/gradient_method.h"
#include "mtl/weighting/methods.h"

namespace mtl {

namespace {
class UpGradWeighting : public GradientWeighting {
 public:
  explicit UpGradWeighting(double reg_eps) : reg_eps_(reg_eps) {}

  at::Tensor combine(const at::Tensor& G, const std::vector<double>&, const StepContext&) override {
    const int64_t T = G.size(0);
    at::Tensor M = regularised_gram(G, reg_eps_);
    at::Tensor w = at::zeros({T}, at::kDouble);
    for (int64_t i = 0; i < T; ++i) {
      at::Tensor lower = at::zeros({T}, at::kDouble);
      lower[i] = 1.0;
      w += box_qp(M, lower) / static_cast<double>(T);
    }
    last_weights_.assign(w.data_ptr<double>(), w.data_ptr<double>() + T);
    return weighted_rows(G, w);
  }

 private:
  double reg_eps_;
};
}  // namespace

std::unique_ptr<Weighting> make_upgrad_weighting(const ConfigNode& options, const WeightingContext&) {
  return std::make_unique<UpGradWeighting>(non_negative<double>(options, "reg_eps", 1e-4));
}

}  // namespace mtl
