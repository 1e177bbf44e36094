// Regression: the `regression` head (values [B] for a 1-dimensional label, else [B, D]) and the
// `mse`, `l1` and `huber` losses.
//
//   auto head = std::make_shared<mtl::RegressionHeadImpl>(mtl::RegressionHeadOptions(64, 1).activation("tanh"));
//   mtl::LossFn loss = mtl::HuberLoss(mtl::HuberLossOptions().delta(0.5));
//   YAML: head: {type: regression, hidden: [32], activation: tanh}
//         loss: {type: huber, delta: 0.5}
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <cstdint>

#include "heads/head.h"
#include "heads/mlp_head.h"

namespace mtl {

/// The MLP options (hidden, dropout, activation) with out_features = the label's dimensions.
struct RegressionHeadOptions : MlpHeadOptions {
  RegressionHeadOptions(int64_t in_features, int64_t dims) : MlpHeadOptions(in_features, dims) {}
  explicit RegressionHeadOptions(MlpHeadOptions mlp) : MlpHeadOptions(std::move(mlp)) {}
  /// The MLP options; the label's size gives the dimensions.
  static RegressionHeadOptions from_config(const ConfigNode& options, const HeadContext& ctx);
};

/// Values [B] when the label has one dimension, else [B, D]; predict() = the output itself.
class RegressionHeadImpl : public MlpHeadImpl {
 public:
  explicit RegressionHeadImpl(MlpHeadOptions options);
  at::Tensor forward(const at::Tensor& features) override;
  at::Tensor predict(const at::Tensor& output) const override;

 private:
  bool squeeze_;  // one output dimension: return [B], the shape of the targets
};

/// Registry factory: from_config + constructor.
Head make_regression_head(const ConfigNode& options, const HeadContext& ctx);

// The regression losses take the mean over all elements; for [B, D] outputs that is the mean over
// examples of the per-example mean over dimensions, a plain per-example mean (shards add up exactly).
// Outputs and targets must have the same shape.

/// mean (x - y)^2.
at::Tensor mse_loss(const at::Tensor& output, const at::Tensor& target);
/// mean |x - y|.
at::Tensor l1_loss(const at::Tensor& output, const at::Tensor& target);

struct HuberLossOptions {
  TORCH_ARG(double, delta) = 1.0;  // > 0: where the loss turns from quadratic to linear

 public:
  /// Reads `delta` (default 1.0).
  static HuberLossOptions from_config(const ConfigNode& options);
  /// Throws mtl::Error(key, expected) for the first bad value.
  void validate() const;
};
/// mean of 0.5 (x - y)^2 where |x - y| < delta, else delta (|x - y| - 0.5 delta).
at::Tensor huber_loss(const at::Tensor& output, const at::Tensor& target, const HuberLossOptions& options = {});

/// The losses as LossFn-callable objects (mse and l1 have no options).
struct MseLoss {
  at::Tensor operator()(const at::Tensor& output, const at::Tensor& target) const { return mtl::mse_loss(output, target); }
};
struct L1Loss {
  at::Tensor operator()(const at::Tensor& output, const at::Tensor& target) const { return mtl::l1_loss(output, target); }
};
class HuberLoss {
 public:
  explicit HuberLoss(HuberLossOptions options = {});
  at::Tensor operator()(const at::Tensor& output, const at::Tensor& target) const;
  const HuberLossOptions& options() const { return options_; }

 private:
  HuberLossOptions options_;
};

/// Registry factories (mse and l1 take no options).
LossFn make_mse_loss(const ConfigNode& options, const LabelInfo& label);
LossFn make_l1_loss(const ConfigNode& options, const LabelInfo& label);
LossFn make_huber_loss(const ConfigNode& options, const LabelInfo& label);

}  // namespace mtl
