// GradVac, gradient vaccine (Wang et al., 2021): like PCGrad, but each task pair has a target cosine
// similarity phi_ij, an exponential moving average (rate beta) of the similarities seen so far. When
// cos(g_i', g_j) < phi_ij, g_i' is moved towards g_j until the cosine equals the target:
//   g_i' += g_j |g_i'| (phi_ij sqrt(1 - c^2) - c sqrt(1 - phi_ij^2)) / (|g_j| sqrt(1 - phi_ij^2)),
// then phi_ij <- (1 - beta) phi_ij + beta c (every step, as in the paper). The shared gradient is sum_i g_i'.
// The targets start at 0 (PCGrad's) and are checkpoint state. Task order as in PCGrad.
// Effective weights (exact): a_t = 1 + the sum of the multiples of g_t added by the adjustments.
//   YAML:  weighting: {method: gradvac, beta: 0.01, order: random, seed: 0}
//   C++:   mtl::GradVac w(2, mtl::GradVacOptions().beta(0.01).order("fixed"));
#pragma once

#include <torch/arg.h>

#include <cstdint>
#include <string>

#include "mtl/weighting/gradient_method.h"

namespace mtl {

struct GradVacOptions {
  /// Rate of the target similarities' moving average, in [0, 1].
  TORCH_ARG(double, beta) = 0.01;
  /// "random" or "fixed", as PcGradOptions::order.
  TORCH_ARG(std::string, order) = "random";
  /// Seed of the random orders, >= 0.
  TORCH_ARG(int64_t, seed) = 0;

 public:
  static GradVacOptions from_config(const ConfigNode& options);
};

class GradVac : public GradientWeighting {
 public:
  using Options = GradVacOptions;
  explicit GradVac(int64_t tasks, GradVacOptions options = {});
  at::Tensor combine(const at::Tensor& G, const std::vector<double>& losses, const StepContext& ctx) override;
  void save(torch::serialize::OutputArchive& a) const override;
  void load(torch::serialize::InputArchive& a) override;

 private:
  double beta_;
  bool random_order_;
  uint64_t seed_;
  at::Tensor target_;  // [T, T] target cosine similarities, per pair of the run's tasks
};

}  // namespace mtl
