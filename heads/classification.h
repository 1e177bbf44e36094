// Single-label classification: the `classification` head (logits [B, C]) and the `cross_entropy` loss.
//
//   auto head = std::make_shared<mtl::ClassificationHeadImpl>(mtl::ClassificationHeadOptions(64, 10).hidden({32}));
//   mtl::LossFn loss = mtl::CrossEntropyLoss(mtl::CrossEntropyLossOptions().label_smoothing(0.1));
//   YAML: head: {type: classification, hidden: [64], dropout: 0.1}   # optional num_classes must equal C
//         loss: {type: cross_entropy, label_smoothing: 0.1, class_weights: [1, 2, 1]}
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <cstdint>
#include <vector>

#include "heads/head.h"
#include "heads/mlp_head.h"

namespace mtl {

/// The MLP options (hidden, dropout, activation) with out_features = the number of classes.
struct ClassificationHeadOptions : MlpHeadOptions {
  ClassificationHeadOptions(int64_t in_features, int64_t num_classes) : MlpHeadOptions(in_features, num_classes) {}
  explicit ClassificationHeadOptions(MlpHeadOptions mlp) : MlpHeadOptions(std::move(mlp)) {}
  /// The MLP options and `num_classes` (default: the label's size; a different value is an error).
  static ClassificationHeadOptions from_config(const ConfigNode& options, const HeadContext& ctx);
};

/// Logits [B, C]; predict() = argmax -> int64 class index [B].
class ClassificationHeadImpl : public MlpHeadImpl {
 public:
  explicit ClassificationHeadImpl(MlpHeadOptions options) : MlpHeadImpl(std::move(options)) {}
  at::Tensor predict(const at::Tensor& output) const override;
};

/// Registry factory: from_config + constructor.
Head make_classification_head(const ConfigNode& options, const HeadContext& ctx);

struct CrossEntropyLossOptions {
  TORCH_ARG(double, label_smoothing) = 0.0;          // eps in [0, 1)
  TORCH_ARG(std::vector<double>, class_weights) = {}; // empty = unweighted, else one positive weight per class

 public:
  /// Reads `label_smoothing` (default 0) and `class_weights` (optional, label.size positive numbers).
  static CrossEntropyLossOptions from_config(const ConfigNode& options, const LabelInfo& label);
  /// Throws mtl::Error(key, expected) for the first bad value.
  void validate() const;
};

/// Cross-entropy of logits [B, C] against class indices [B], the plain MEAN over examples:
///   l_i  = -(1 - eps) * log p_i[y_i] - (eps / C) * sum_c log p_i[c]       (p_i = softmax of row i)
///   loss = mean_i w[y_i] * l_i                                            (w = 1 without weights)
/// This differs from PyTorch's weighted mean sum_i(w l_i) / sum_i(w[y_i]) on purpose: the engine
/// splits a batch into shards and adds shard losses weighted by shard size, which is exact only for a
/// plain per-example mean. Without class weights both definitions agree.
/// Per-pixel classes (the `segmentation` head): logits [B, C, H, W] against [B, H, W], each pixel a row above.
at::Tensor cross_entropy_loss(const at::Tensor& logits, const at::Tensor& target,
                              const CrossEntropyLossOptions& options = {});

/// cross_entropy_loss with fixed options, callable as a LossFn; the constructor checks the options.
class CrossEntropyLoss {
 public:
  explicit CrossEntropyLoss(CrossEntropyLossOptions options = {});
  at::Tensor operator()(const at::Tensor& logits, const at::Tensor& target) const;
  const CrossEntropyLossOptions& options() const { return options_; }

 private:
  CrossEntropyLossOptions options_;
};

/// Registry factory: from_config + CrossEntropyLoss.
LossFn make_cross_entropy_loss(const ConfigNode& options, const LabelInfo& label);

}  // namespace mtl
