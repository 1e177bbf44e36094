// CAGrad (Liu et al., 2021), as in the authors' code: with g0 the average gradient and phi = c^2 |g0|^2,
//   w = argmin_{w in simplex} g_w . g0 + sqrt(phi) |g_w|,  g_w = sum_t w_t g_t,
//   d = (g0 + sqrt(phi) / |g_w| g_w) / (1 + c^2)     (rescale 1, the authors' default).
// c in [0, 1): 0 is plain averaging; larger values move further towards the worst-off task.
//   weighting: {method: cagrad, c: 0.5}
// The simplex problem is solved by accelerated projected gradient (the authors use SciPy's SLSQP).
#include <cmath>

#include "mtl/config/config_node.h"
#include "mtl/weighting/gradient_method.h"
#include "mtl/weighting/methods.h"

namespace mtl {

namespace {
class CaGradWeighting : public GradientWeighting {
 public:
  explicit CaGradWeighting(double c) : c_(c) {}

  at::Tensor combine(const at::Tensor& G, const std::vector<double>&, const StepContext&) override {
    const int64_t T = G.size(0);
    at::Tensor M = gram_matrix(G);
    at::Tensor b = at::full({T}, 1.0 / static_cast<double>(T), M.options());
    const double g0_norm = std::sqrt(std::max(0.0, M.mean().item<double>()) + 1e-8);
    const double cc = c_ * g0_norm + 1e-8;
    at::Tensor Mb = M.mv(b);
    auto f = [&](const at::Tensor& w) {
      return w.dot(Mb).item<double>() + cc * std::sqrt(w.dot(M.mv(w)).item<double>() + 1e-8);
    };
    auto grad = [&](const at::Tensor& w) {
      at::Tensor Mw = M.mv(w);
      return Mb + (cc / std::sqrt(w.dot(Mw).item<double>() + 1e-8)) * Mw;
    };
    at::Tensor w = minimize_on_simplex(f, grad, b);
    const double gw_norm = std::sqrt(std::max(0.0, w.dot(M.mv(w)).item<double>()));
    const double lambda = cc / (gw_norm + 1e-8);
    at::Tensor eff = (b + lambda * w) / (1.0 + c_ * c_);
    last_weights_.assign(eff.data_ptr<double>(), eff.data_ptr<double>() + T);
    return weighted_rows(G, eff);
  }

 private:
  double c_;
};
}  // namespace

std::unique_ptr<Weighting> make_cagrad_weighting(const ConfigNode& options, const WeightingContext&) {
  double c = options.get<double>("c", 0.5);
  options.check(c >= 0 && c < 1, "c", "expected a value in [0, 1), got " + std::to_string(c));
  return std::make_unique<CaGradWeighting>(c);
}

}  // namespace mtl
