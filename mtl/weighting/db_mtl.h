// DB-MTL, dual-balancing (Lin et al., 2023): loss-scale balancing by optimising log L_t (gradient g_t / L_t)
// and gradient-magnitude balancing: with h_t an exponential moving average of the log-loss gradients
// (h <- g + beta / k^beta_sigma (h - g) at step k >= 1, h = 0 before the first step, as in LibMTL), the
// update is
//   d = sum_t (max_s |h_s| / |h_t|) h_t.
// The moving averages (T x P, like one more copy of the trunk gradients) and the step count are checkpoint state.
// Effective weights: d includes earlier steps' gradients (through h), so it is in general no combination of
// this step's task gradients; the logged weights are its least-squares coefficients on them.
// Representation space only with beta: 0: the moving average adds up each coordinate across steps, which has
// a meaning for parameters but not for representation gradients, whose rows are each batch's own examples.
//   YAML:  weighting: {method: db_mtl, beta: 0.9, beta_sigma: 0.5}
//   C++:   mtl::DbMtl w(2, mtl::DbMtlOptions().beta(0.9).beta_sigma(0.5));
#pragma once

#include <torch/arg.h>

#include <cstdint>
#include <string>

#include "mtl/weighting/gradient_method.h"

namespace mtl {

struct DbMtlOptions {
  /// Moving-average rate, in [0, 1].
  TORCH_ARG(double, beta) = 0.9;
  /// Decay of the rate with the step count, >= 0.
  TORCH_ARG(double, beta_sigma) = 0.5;

 public:
  static DbMtlOptions from_config(const ConfigNode& options);
};

class DbMtl : public GradientWeighting {
 public:
  using Options = DbMtlOptions;
  explicit DbMtl(int64_t tasks, DbMtlOptions options = {});
  at::Tensor combine(const at::Tensor& G, const std::vector<double>& losses, const StepContext& ctx) override;
  std::string representation_space_refusal() const override;
  void save(torch::serialize::OutputArchive& a) const override;
  void load(torch::serialize::InputArchive& a) override;

 private:
  int64_t tasks_;
  double beta_, beta_sigma_;
  int64_t steps_ = 0;
  at::Tensor buffer_;  // h, [T, P] float64 (undefined before the first step)
};

}  // namespace mtl
