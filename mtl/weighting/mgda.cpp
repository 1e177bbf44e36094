// MGDA (Sener & Koltun, 2018): the shared gradient is the minimum-norm point of the convex hull of the
// (normalised) task gradients, d = sum_t a_t g_t / n_t with a = argmin_{a in simplex} |sum_t a_t g_t / n_t|^2,
// found by Frank-Wolfe with exact line search (the paper's solver). Normalisers n_t:
//   none: 1;  l2: |g_t|;  loss: L_t;  loss+: L_t |g_t|  (the paper's default).
//   weighting: {method: mgda, normalization: loss+, max_iter: 250, tol: 1e-5}
// A zero gradient makes the minimum-norm point zero (no common descent direction is needed).
// The effective weights a_t / n_t are logged.
#include <cmath>

#include "mtl/config/config_node.h"
#include "mtl/weighting/gradient_method.h"
#include "mtl/weighting/methods.h"

namespace mtl {

namespace {
class MgdaWeighting : public GradientWeighting {
 public:
  MgdaWeighting(std::string normalization, int max_iter, double tol)
      : normalization_(std::move(normalization)), max_iter_(max_iter), tol_(tol) {}

  at::Tensor combine(const at::Tensor& G, const std::vector<double>& losses, const StepContext&) override {
    const int64_t T = G.size(0);
    at::Tensor M = gram_matrix(G);
    at::Tensor norms = M.diagonal().clamp_min(0).sqrt();
    at::Tensor n = at::ones({T}, M.options());
    at::Tensor L = at::tensor(losses, M.options());
    if (normalization_ == "l2") n = norms;
    if (normalization_ == "loss") n = L;
    if (normalization_ == "loss+") n = L * norms;
    n = n.clamp_min(1e-12);
    at::Tensor Mn = M / n.unsqueeze(0) / n.unsqueeze(1);
    at::Tensor a = min_norm_frank_wolfe(Mn, max_iter_, tol_);
    at::Tensor w = a / n;
    last_weights_.assign(w.data_ptr<double>(), w.data_ptr<double>() + T);
    return weighted_rows(G, w);
  }

 private:
  std::string normalization_;
  int max_iter_;
  double tol_;
};
}  // namespace

std::unique_ptr<Weighting> make_mgda_weighting(const ConfigNode& options, const WeightingContext&) {
  std::string norm = options.choice("normalization", std::string("loss+"), {"none", "l2", "loss", "loss+"});
  int max_iter = positive<int>(options, "max_iter", 250);
  double tol = positive<double>(options, "tol", 1e-5);
  return std::make_unique<MgdaWeighting>(norm, max_iter, tol);
}

}  // namespace mtl
