// FAMO, fast adaptive multitask optimization (Liu et al., NeurIPS 2023): loss-based, O(1) extra cost per
// step besides one gradient-free forward pass.
//   Task logits xi (start at 0), z = softmax(xi), D_t = L_t - min_t + 1e-8 (min_t = 0: losses are >= 0).
//   Objective sum_t z_t log D_t / c with c = sum_t z_t / D_t held constant, so task t's loss weight is
//   w_t = (z_t / D_t) / sum_s (z_s / D_s)   (the weights sum to 1, as in the paper).
//   After the optimizer step the trainer evaluates the same batch again; with
//   delta_t = log D_t(before) - log D_t(after), the logits take one Adam step (betas 0.9/0.999, eps 1e-8,
//   L2 weight decay `gamma` added to the gradient, as torch.optim.Adam(weight_decay=gamma) does) along
//   J_softmax(xi)^T delta = z * (delta - z . delta).
// The losses are full-batch means reduced over threads, so any thread count gives the same weights. The
// logits and Adam moments are checkpoint state. (The authors also clip the model's gradient norm to 1;
// mtl leaves that to the optimizer settings.)
//   YAML:  weighting: {method: famo, lr: 0.025, gamma: 0.01}   # the authors' defaults (w_lr, gamma)
//   C++:   mtl::Famo w(2, mtl::FamoOptions().lr(0.025).gamma(0.01));
#pragma once

#include <torch/arg.h>

#include <cstdint>

#include "mtl/weighting/weighting.h"

namespace mtl {

struct FamoOptions {
  /// Adam learning rate of the task logits, > 0.
  TORCH_ARG(double, lr) = 0.025;
  /// L2 weight decay of the task logits, >= 0.
  TORCH_ARG(double, gamma) = 0.01;

 public:
  static FamoOptions from_config(const ConfigNode& options);
};

class Famo : public Weighting {
 public:
  using Options = FamoOptions;
  explicit Famo(int64_t tasks, FamoOptions options = {});
  std::vector<double> loss_weights(const std::vector<double>& losses, const StepContext& ctx) override;
  bool needs_losses_after_step() const override { return true; }
  void after_step(const std::vector<double>& after, const StepContext& ctx) override;
  void save(torch::serialize::OutputArchive& a) const override;
  void load(torch::serialize::InputArchive& a) override;

 private:
  std::vector<double> softmax(const StepContext& ctx) const;  // of the logits of the tasks passed this step

  double lr_, gamma_;
  std::vector<double> logits_, m_, v_;
  int64_t adam_steps_ = 0;
  std::vector<double> before_;  // this step's losses before the update
  std::vector<int64_t> before_tasks_;
};

}  // namespace mtl
