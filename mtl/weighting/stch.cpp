// STCH, smooth Tchebycheff scalarisation (Lin et al., ICML 2024), in the form of the authors' MTL code and
// LibMTL:
//   epochs 0 .. warmup_epochs:  F = sum_t log L_t                  (w_t = 1 / L_t)
//     the full-batch losses of epoch `warmup_epochs` are averaged into the nadir vector n;
//   later epochs:               F = T mu log sum_t exp(log(L_t / n_t) / mu)
//                               (w_t = T softmax_t(log(L_t / n_t) / mu) / L_t).
//   weighting: {method: stch, mu: 1.0, warmup_epochs: 4}   # LibMTL's defaults
// A smaller mu approaches the (non-smooth) Tchebycheff max over the normalised losses. The weights are
// dF/dL_t at the full-batch losses, so any thread count optimises the same objective. The nadir vector and
// its running sum are checkpoint state.
#include <cmath>

#include <torch/serialize/archive.h>

#include "mtl/config/config_node.h"
#include "mtl/weighting/methods.h"

namespace mtl {

namespace {
constexpr double kTiny = 1e-20;

class StchWeighting : public Weighting {
 public:
  StchWeighting(size_t tasks, double mu, int64_t warmup)
      : mu_(mu), warmup_(warmup), sum_(tasks, 0.0), count_(tasks, 0.0) {}

  std::vector<double> loss_weights(const std::vector<double>& losses, const StepContext& ctx) override {
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

  void save(torch::serialize::OutputArchive& a) const override {
    a.write("nadir_sum", at::tensor(sum_, at::kDouble));
    a.write("nadir_count", at::tensor(count_, at::kDouble));
  }
  void load(torch::serialize::InputArchive& a) override {
    sum_ = read_state_vector(a, "nadir_sum", static_cast<int64_t>(sum_.size()), "stch");
    count_ = read_state_vector(a, "nadir_count", static_cast<int64_t>(count_.size()), "stch");
  }

 private:
  double mu_;
  int64_t warmup_;
  std::vector<double> sum_;    // per task: sum of the full-batch losses of epoch warmup_ (nadir = sum_ / count_)
  std::vector<double> count_;  // per task: steps of epoch warmup_ that had the task
};
}  // namespace

std::unique_ptr<Weighting> make_stch_weighting(const ConfigNode& options, const WeightingContext& ctx) {
  double mu = positive<double>(options, "mu", 1.0);
  int64_t warmup = non_negative<int64_t>(options, "warmup_epochs", 4);
  return std::make_unique<StchWeighting>(ctx.task_names.size(), mu, warmup);
}

}  // namespace mtl
