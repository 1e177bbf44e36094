// Regression: the `regression` head (values [B] for a 1-dimensional label, else [B, D]) and the
// `mse`, `l1` and `huber` losses.
//
//   head: {type: regression, hidden: [32], activation: tanh}
//   loss: {type: huber, delta: 0.5}
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "heads/head.h"
#include "heads/mlp_head.h"

namespace mtl {

/// Values [B] when the label has one dimension, else [B, D]; predict() = the output itself.
class RegressionHeadImpl : public MlpHeadImpl {
 public:
  RegressionHeadImpl(int64_t in_features, int64_t dims, MlpHeadOptions options);
  at::Tensor forward(const at::Tensor& features) override;
  at::Tensor predict(const at::Tensor& output) const override;

 private:
  bool squeeze_;  // one output dimension: return [B], the shape of the targets
};

/// Options: the MLP options (hidden, dropout, activation).
Head make_regression_head(const ConfigNode& options, const HeadContext& ctx);

// The regression losses take the mean over all elements; for [B, D] outputs that is the mean over
// examples of the per-example mean over dimensions, a plain per-example mean (shards add up exactly).

/// mean (x - y)^2. No options.
LossFn make_mse_loss(const ConfigNode& options, const LabelInfo& label);
/// mean |x - y|. No options.
LossFn make_l1_loss(const ConfigNode& options, const LabelInfo& label);
/// mean of 0.5 (x - y)^2 where |x - y| < delta, else delta (|x - y| - 0.5 delta).
/// Option `delta` (> 0, default 1.0).
LossFn make_huber_loss(const ConfigNode& options, const LabelInfo& label);

}  // namespace mtl
