// DWA, dynamic weight average (Liu, Johns & Davison, 2019): w_t = T * softmax_t(r_t / temperature), where
// r_t = L_t(e-1) / L_t(e-2) is the ratio of the task's mean training loss over the last two epochs. The
// first two epochs use w_t = 1. Weights change once per epoch, from epoch means, so they are the same for
// any thread count. The last two epochs' losses are checkpoint state.
//   YAML:  weighting: {method: dwa, temperature: 2.0}
//   C++:   mtl::Dwa w(2, mtl::DwaOptions().temperature(2.0));
#pragma once

#include <torch/arg.h>

#include "mtl/weighting/weighting.h"

namespace mtl {

struct DwaOptions {
  /// Softmax temperature, > 0.
  TORCH_ARG(double, temperature) = 2.0;

 public:
  static DwaOptions from_config(const ConfigNode& options);
};

class Dwa : public Weighting {
 public:
  using Options = DwaOptions;
  explicit Dwa(int64_t tasks, DwaOptions options = {});
  std::vector<double> loss_weights(const std::vector<double>& losses, const StepContext& ctx) override;
  bool weights_ignore_step_losses() const override { return true; }
  void on_epoch_end(const std::vector<double>& epoch_losses) override;
  void save(torch::serialize::OutputArchive& a) const override;
  void load(torch::serialize::InputArchive& a) override;

 private:
  size_t tasks_;
  double temperature_;
  std::vector<std::vector<double>> history_;  // mean task losses of the last (up to) two epochs
};

}  // namespace mtl
