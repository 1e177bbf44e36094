// MGDA (Sener & Koltun, 2018): the shared gradient is the minimum-norm point of the convex hull of the
// (normalised) task gradients, d = sum_t a_t g_t / n_t with a = argmin_{a in simplex} |sum_t a_t g_t / n_t|^2,
// found by Frank-Wolfe with exact line search (the paper's solver). Normalisers n_t:
//   none: 1;  l2: |g_t|;  loss: L_t;  loss+: L_t |g_t|  (the paper's default).
//   weighting: {method: mgda, normalization: loss+, max_iter: 250, tol: 1e-5}
// A zero gradient makes the minimum-norm point zero (no common descent direction is needed).
// The effective weights a_t / n_t are logged.
//
// MGDA-UB (the paper's upper bound, `method: mgda_ub`, same options): the same problem on the gradients
// w.r.t. the shared representation Z (the trunk's output) instead of the shared parameters. The engine
// only needs the T x T Gram matrix of dL_t/dZ (one backward pass through the heads per task), then
// backpropagates sum_t w_t dL_t/dZ through the trunk once: about the cost of EW. Heads get their own
// task's gradient, as in the paper's Algorithm 2.
#include <cmath>

#include "mtl/config/config_node.h"
#include "mtl/weighting/gradient_method.h"
#include "mtl/weighting/methods.h"

namespace mtl {

namespace {
class MgdaWeighting : public GradientWeighting {
 public:
  MgdaWeighting(std::string normalization, int max_iter, double tol, bool representation)
      : normalization_(std::move(normalization)), max_iter_(max_iter), tol_(tol), representation_(representation) {}

  GradientKind needs() const override {
    return representation_ ? GradientKind::kRepresentationGrads : GradientKind::kSharedTaskGrads;
  }

  at::Tensor combine(const at::Tensor& G, const std::vector<double>& losses, const StepContext&) override {
    at::Tensor w = weights_from_gram(gram_matrix(G), losses);
    return weighted_rows(G, w);
  }

  std::vector<double> representation_weights(const at::Tensor& gram, const std::vector<double>& losses,
                                             const StepContext&) override {
    weights_from_gram(gram.to(at::kDouble), losses);
    return last_weights_;
  }

 private:
  at::Tensor weights_from_gram(const at::Tensor& M, const std::vector<double>& losses) {
    const int64_t T = M.size(0);
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
    return w;
  }

  std::string normalization_;
  int max_iter_;
  double tol_;
  bool representation_;
};

std::unique_ptr<Weighting> make_mgda(const ConfigNode& options, bool representation) {
  std::string norm = options.choice("normalization", std::string("loss+"), {"none", "l2", "loss", "loss+"});
  int max_iter = positive<int>(options, "max_iter", 250);
  double tol = positive<double>(options, "tol", 1e-5);
  return std::make_unique<MgdaWeighting>(norm, max_iter, tol, representation);
}
}  // namespace

std::unique_ptr<Weighting> make_mgda_weighting(const ConfigNode& options, const WeightingContext&) {
  return make_mgda(options, false);
}

std::unique_ptr<Weighting> make_mgda_ub_weighting(const ConfigNode& options, const WeightingContext&) {
  return make_mgda(options, true);
}

}  // namespace mtl
