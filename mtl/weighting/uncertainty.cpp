// Uncertainty weighting (Kendall, Gal & Cipolla, 2018), in the form LibMTL uses:
//   F = sum_t [ L_t / (2 exp(s_t)) + s_t / 2 ],  s_t = log sigma_t^2 learned with the model.
// Weights w_t = 1 / (2 exp(s_t)); the gradient of F with respect to s_t, 1/2 - L_t / (2 exp(s_t)), is set
// from the full-batch losses each step, so the log-variances are optimised exactly with any thread count.
//   weighting: {method: uw, init: -0.5}   # initial s_t (LibMTL's default)
// The log-variances are trainable parameters (the optimizer updates them) and are saved in checkpoints.
#include <cmath>

#include <torch/serialize/archive.h>

#include "mtl/config/config_node.h"
#include "mtl/weighting/methods.h"

namespace mtl {

namespace {
class UncertaintyWeighting : public Weighting {
 public:
  UncertaintyWeighting(size_t tasks, double init)
      : log_var_(at::full({static_cast<int64_t>(tasks)}, init, at::kDouble).set_requires_grad(true)) {}

  std::vector<double> loss_weights(const std::vector<double>& losses, const StepContext& ctx) override {
    at::Tensor s = log_var_.detach();
    std::vector<double> w(losses.size());
    at::Tensor grad = at::zeros_like(s);  // absent tasks: no loss, no regulariser term
    auto sa = s.accessor<double, 1>();
    auto ga = grad.accessor<double, 1>();
    for (size_t i = 0; i < losses.size(); ++i) {
      const int64_t t = ctx.task(i);
      w[i] = 0.5 * std::exp(-sa[t]);
      ga[t] = 0.5 - losses[i] * w[i];
    }
    log_var_.mutable_grad() = grad;
    last_weights_ = w;
    return w;
  }
  std::vector<at::Tensor> parameters() override { return {log_var_}; }
  void save(torch::serialize::OutputArchive& a) const override { a.write("log_var", log_var_.detach()); }
  void load(torch::serialize::InputArchive& a) override { load_learned(a, "log_var", log_var_, "uw"); }

 private:
  at::Tensor log_var_;
};
}  // namespace

std::unique_ptr<Weighting> make_uncertainty_weighting(const ConfigNode& options, const WeightingContext& ctx) {
  double init = options.get<double>("init", -0.5);
  options.check(std::isfinite(init) && std::abs(init) <= 20, "init", "expected a log-variance in [-20, 20]");
  return std::make_unique<UncertaintyWeighting>(ctx.task_names.size(), init);
}

}  // namespace mtl
