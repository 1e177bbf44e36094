#include "mtl/weighting/stch.h"

#include <ATen/ATen.h>
#include <torch/serialize/archive.h>

#include <cmath>

#include "mtl/config/config_node.h"
#include "mtl/weighting/method_support.h"

namespace mtl {

namespace {
constexpr double kTiny = 1e-20;
}  // namespace

StchOptions StchOptions::from_config(const ConfigNode& options) {
  double mu = positive<double>(options, "mu", 1.0);
  int64_t warmup = non_negative<int64_t>(options, "warmup_epochs", 4);
  return StchOptions().mu(mu).warmup_epochs(warmup);
}

Stch::Stch(int64_t tasks, StchOptions options)
    : mu_(options.mu()), warmup_(options.warmup_epochs()), sum_(static_cast<size_t>(tasks), 0.0),
      count_(sum_.size(), 0.0) {
  check_option(mu_ > 0, "StchOptions", "mu", got("expected a positive number", mu_));
  check_option(warmup_ >= 0, "StchOptions", "warmup_epochs", got("expected a number >= 0", warmup_));
}

std::vector<double> Stch::loss_weights(const std::vector<double>& losses, const StepContext& ctx) {
  const size_t T = losses.size();
  std::vector<double> w(T);
  bool nadir_known = true;  // every task of this step has one
  for (size_t i = 0; i < T; ++i) nadir_known = nadir_known && count_[ctx.task(i)] > 0;
  if (ctx.epoch <= warmup_ || !nadir_known) {
    for (size_t t = 0; t < T; ++t) w[t] = 1.0 / (losses[t] + kTiny);
    if (ctx.epoch == warmup_) {
      for (size_t i = 0; i < T; ++i) {
        sum_[ctx.task(i)] += losses[i];
        count_[ctx.task(i)] += 1;
      }
    }
  } else {
    std::vector<double> u(T), nadir(T);
    double mx = -INFINITY, z = 0;
    for (size_t t = 0; t < T; ++t) {
      const size_t k = static_cast<size_t>(ctx.task(t));
      nadir[t] = std::max(sum_[k] / count_[k], kTiny);
      u[t] = std::log(losses[t] / nadir[t] + kTiny) / mu_;
      mx = std::max(mx, u[t]);
    }
    for (size_t t = 0; t < T; ++t) z += std::exp(u[t] - mx);
    for (size_t t = 0; t < T; ++t) {
      double softmax = std::exp(u[t] - mx) / z;
      w[t] = static_cast<double>(T) * softmax / nadir[t] / (losses[t] / nadir[t] + kTiny);
    }
  }
  last_weights_ = w;
  return w;
}

void Stch::save(torch::serialize::OutputArchive& a) const {
  a.write("nadir_sum", at::tensor(sum_, at::kDouble));
  a.write("nadir_count", at::tensor(count_, at::kDouble));
}

void Stch::load(torch::serialize::InputArchive& a) {
  sum_ = read_state_vector(a, "nadir_sum", static_cast<int64_t>(sum_.size()), "stch");
  count_ = read_state_vector(a, "nadir_count", static_cast<int64_t>(count_.size()), "stch");
}

}  // namespace mtl
