// Single-label classification: the `classification` head (logits [B, C]) and the `cross_entropy` loss.
//
//   head: {type: classification, hidden: [64], dropout: 0.1}   # optional num_classes must equal C
//   loss: {type: cross_entropy, label_smoothing: 0.1, class_weights: [1, 2, 1]}
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "heads/head.h"
#include "heads/mlp_head.h"

namespace mtl {

/// Logits [B, C]; predict() = argmax -> int64 class index [B].
class ClassificationHeadImpl : public MlpHeadImpl {
 public:
  ClassificationHeadImpl(int64_t in_features, int64_t num_classes, MlpHeadOptions options);
  at::Tensor predict(const at::Tensor& output) const override;
};

/// Options: the MLP options (hidden, dropout, activation) and `num_classes` (default: the label's size;
/// a different value is an error).
Head make_classification_head(const ConfigNode& options, const HeadContext& ctx);

struct CrossEntropyOptions {
  double label_smoothing = 0.0;       // eps in [0, 1)
  std::vector<double> class_weights;  // empty = unweighted, else one positive weight per class
};

/// Cross-entropy of logits [B, C] against class indices [B], the plain MEAN over examples:
///   l_i  = -(1 - eps) * log p_i[y_i] - (eps / C) * sum_c log p_i[c]       (p_i = softmax of row i)
///   loss = mean_i w[y_i] * l_i                                            (w = 1 without weights)
/// This differs from PyTorch's weighted mean sum_i(w l_i) / sum_i(w[y_i]) on purpose: the engine
/// splits a batch into shards and adds shard losses weighted by shard size, which is exact only for a
/// plain per-example mean. Without class weights both definitions agree.
at::Tensor cross_entropy_loss(const at::Tensor& logits, const at::Tensor& target,
                              const CrossEntropyOptions& options);

/// Reads `label_smoothing` (default 0) and `class_weights` (optional, label.size positive numbers).
LossFn make_cross_entropy_loss(const ConfigNode& options, const LabelInfo& label);

}  // namespace mtl
