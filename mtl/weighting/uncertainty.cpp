#include "mtl/weighting/uncertainty.h"

#include <ATen/ATen.h>
#include <torch/serialize/archive.h>

#include <cmath>

#include "mtl/config/config_node.h"
#include "mtl/weighting/method_support.h"

namespace mtl {

UncertaintyWeightingOptions UncertaintyWeightingOptions::from_config(const ConfigNode& options) {
  double init = options.get<double>("init", -0.5);
  options.check(std::isfinite(init) && std::abs(init) <= 20, "init", "expected a log-variance in [-20, 20]");
  return UncertaintyWeightingOptions().init(init);
}

UncertaintyWeighting::UncertaintyWeighting(int64_t tasks, UncertaintyWeightingOptions options) {
  check_option(std::isfinite(options.init()) && std::abs(options.init()) <= 20, "UncertaintyWeightingOptions",
               "init", got("expected a log-variance in [-20, 20]", options.init()));
  log_var_ = at::full({tasks}, options.init(), at::kDouble).set_requires_grad(true);
}

std::vector<double> UncertaintyWeighting::loss_weights(const std::vector<double>& losses, const StepContext& ctx) {
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

void UncertaintyWeighting::save(torch::serialize::OutputArchive& a) const { a.write("log_var", log_var_.detach()); }

void UncertaintyWeighting::load(torch::serialize::InputArchive& a) { load_learned(a, "log_var", log_var_, "uw"); }

}  // namespace mtl
