// PCGrad (Yu et al., 2020): each task gradient g_i is projected, task by task in a random order, onto the
// normal plane of every other task's gradient g_j it conflicts with (g_i . g_j < 0):
//   g_i <- g_i - (g_i . g_j) / |g_j|^2 g_j;   the shared gradient is sum_i g_i.
// The order is drawn from (seed, step), so it is the same for any thread count; `order: fixed` uses the
// task order (deterministic, for comparisons).
// Effective weights (exact): every projection subtracts a multiple of an original g_j, so the result is
// sum_t a_t g_t with a_t = 1 - sum of the coefficients (g_i' . g_t) / |g_t|^2 of the projections onto g_t.
//   YAML:  weighting: {method: pcgrad, order: random, seed: 0}
//   C++:   mtl::PcGrad w(mtl::PcGradOptions().order("fixed"));
#pragma once

#include <torch/arg.h>

#include <cstdint>
#include <string>

#include "mtl/weighting/gradient_method.h"

namespace mtl {

struct PcGradOptions {
  /// "random" (drawn from (seed, step) for each task) or "fixed" (task order).
  TORCH_ARG(std::string, order) = "random";
  /// Seed of the random orders, >= 0.
  TORCH_ARG(int64_t, seed) = 0;

 public:
  static PcGradOptions from_config(const ConfigNode& options);
};

class PcGrad : public GradientWeighting {
 public:
  using Options = PcGradOptions;
  explicit PcGrad(PcGradOptions options = {});
  at::Tensor combine(const at::Tensor& G, const std::vector<double>& losses, const StepContext& ctx) override;

 private:
  bool random_order_;
  uint64_t seed_;
};

/// PCGrad's and GradVac's `order` and `seed` options: checks them (errors located at `options`.key) and
/// returns whether the order is random.
bool check_task_order_options(const std::string& options, const std::string& order, int64_t seed);

}  // namespace mtl
