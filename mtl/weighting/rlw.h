// RLW, random loss weighting (Lin et al., 2022): each step draws z ~ N(0, I_T) and uses w = softmax(z).
// The draw depends only on (seed, step), so every thread count (and a resumed run) sees the same weights.
//   YAML:  weighting: {method: rlw, seed: 0}
//   C++:   mtl::Rlw w(2, mtl::RlwOptions().seed(0));
#pragma once

#include <torch/arg.h>

#include <cstdint>

#include "mtl/weighting/weighting.h"

namespace mtl {

struct RlwOptions {
  /// Seed of the per-step draws, >= 0.
  TORCH_ARG(int64_t, seed) = 0;

 public:
  static RlwOptions from_config(const ConfigNode& options);
};

class Rlw : public Weighting {
 public:
  using Options = RlwOptions;
  explicit Rlw(int64_t tasks, RlwOptions options = {});
  std::vector<double> loss_weights(const std::vector<double>& losses, const StepContext& ctx) override;
  bool weights_ignore_step_losses() const override { return true; }

 private:
  int64_t tasks_;
  uint64_t seed_;
};

}  // namespace mtl
