// GLS, geometric loss strategy (Chennupati et al., 2019): the objective is the geometric mean of the task
// losses, F = (prod_t L_t)^(1/T). The engine backpropagates sum_t w_t L_t with w_t = dF/dL_t = F / (T L_t),
// taken at the full-batch losses, so the gradient is exactly that of F for any number of threads.
//   weighting: {method: gls}
// Losses are clamped to >= 1e-12 (a zero loss would zero every weight).
#include <cmath>

#include "mtl/config/config_node.h"
#include "mtl/weighting/methods.h"

namespace mtl {

namespace {
class GlsWeighting : public Weighting {
 public:
  std::vector<double> loss_weights(const std::vector<double>& losses, const StepContext&) override {
    const double T = static_cast<double>(losses.size());
    double log_mean = 0;
    for (double l : losses) log_mean += std::log(std::max(l, 1e-12)) / T;
    const double geo = std::exp(log_mean);
    std::vector<double> w;
    for (double l : losses) w.push_back(geo / (T * std::max(l, 1e-12)));
    last_weights_ = w;
    return w;
  }
};
}  // namespace

std::unique_ptr<Weighting> make_gls_weighting(const ConfigNode&, const WeightingContext&) {
  return std::make_unique<GlsWeighting>();
}

}  // namespace mtl
