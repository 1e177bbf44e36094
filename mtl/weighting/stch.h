// STCH, smooth Tchebycheff scalarisation (Lin et al., ICML 2024), in the form of the authors' MTL code and
// LibMTL:
//   epochs 0 .. warmup_epochs:  F = sum_t log L_t                  (w_t = 1 / L_t)
//     the full-batch losses of epoch `warmup_epochs` are averaged into the nadir vector n;
//   later epochs:               F = T mu log sum_t exp(log(L_t / n_t) / mu)
//                               (w_t = T softmax_t(log(L_t / n_t) / mu) / L_t).
// A smaller mu approaches the (non-smooth) Tchebycheff max over the normalised losses. The weights are
// dF/dL_t at the full-batch losses, so any thread count optimises the same objective. The nadir vector and
// its running sum are checkpoint state.
//   YAML:  weighting: {method: stch, mu: 1.0, warmup_epochs: 4}   # LibMTL's defaults
//   C++:   mtl::Stch w(2, mtl::StchOptions().mu(1.0).warmup_epochs(4));
#pragma once

#include <torch/arg.h>

#include <cstdint>

#include "mtl/weighting/weighting.h"

namespace mtl {

struct StchOptions {
  /// Smoothing, > 0.
  TORCH_ARG(double, mu) = 1.0;
  /// Epochs of log-loss warm-up, >= 0; the last one measures the nadir vector.
  TORCH_ARG(int64_t, warmup_epochs) = 4;

 public:
  static StchOptions from_config(const ConfigNode& options);
};

class Stch : public Weighting {
 public:
  using Options = StchOptions;
  explicit Stch(int64_t tasks, StchOptions options = {});
  std::vector<double> loss_weights(const std::vector<double>& losses, const StepContext& ctx) override;
  void save(torch::serialize::OutputArchive& a) const override;
  void load(torch::serialize::InputArchive& a) override;

 private:
  double mu_;
  int64_t warmup_;
  std::vector<double> sum_;    // per task: sum of the full-batch losses of epoch warmup_ (nadir = sum_ / count_)
  std::vector<double> count_;  // per task: steps of epoch warmup_ that had the task
};

}  // namespace mtl
