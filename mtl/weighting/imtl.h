// IMTL, impartial multi-task learning (Liu et al., 2021), both parts of the paper:
//
// IMTL-L (loss part): learned scales s_t; the objective is sum_t [exp(s_t) L_t - s_t], so task t's loss
// weight is exp(s_t) and d/ds_t = exp(s_t) L_t - 1 (set exactly from the full-batch losses each step; the
// optimizer updates s with the model, s_t starts at 0).
//
// IMTL-G (gradient part): weights a with sum 1 such that the combined gradient d = sum_t a_t g_t has equal
// projections onto every task's unit gradient u_t:
//   a_{2..T} = g_1 U^T (D U^T)^+,  a_1 = 1 - sum a_{2..T},  D_t = g_1 - g_t,  U_t = u_1 - u_t.
// (Pseudo-inverse: identical gradients give a = e_1, i.e. d = g_1.) Tasks with a zero gradient have no
// direction to be fair to: they get a_t = 0 and the others are solved for.
//
// `part: both` (the paper's IMTL, default) applies IMTL-G to the scaled gradients exp(s_t) g_t and trains
// the heads on exp(s_t) L_t; `gradient` is IMTL-G alone; `loss` is IMTL-L alone (a loss-based method:
// no per-task gradients, cost of EW). Effective weights (exact): a_t exp(s_t) on the unscaled gradients.
//   YAML:  weighting: {method: imtl, part: both}
//   C++:   mtl::Imtl w(2, mtl::ImtlOptions().part("gradient"));
#pragma once

#include <torch/arg.h>

#include <string>

#include "mtl/weighting/gradient_method.h"

namespace mtl {

struct ImtlOptions {
  /// "both" (IMTL), "gradient" (IMTL-G) or "loss" (IMTL-L).
  TORCH_ARG(std::string, part) = "both";

 public:
  static ImtlOptions from_config(const ConfigNode& options);
};

class Imtl : public GradientWeighting {
 public:
  using Options = ImtlOptions;
  explicit Imtl(int64_t tasks, ImtlOptions options = {});
  GradientKind needs() const override {
    return part_ == "loss" ? GradientKind::kWeightedLoss : GradientWeighting::needs();
  }
  std::string representation_space_refusal() const override {
    return part_ == "loss" ? "imtl with part: loss (IMTL-L) is loss-based and takes no task gradients" : "";
  }
  std::vector<double> loss_weights(const std::vector<double>& losses, const StepContext& ctx) override;
  at::Tensor combine(const at::Tensor& G, const std::vector<double>& losses, const StepContext& ctx) override;
  std::vector<at::Tensor> parameters() override;
  void save(torch::serialize::OutputArchive& a) const override;
  void load(torch::serialize::InputArchive& a) override;

 private:
  std::string part_;
  at::Tensor scale_;  // s_t (IMTL-L), undefined for part: gradient
};

}  // namespace mtl
