// Token tagging: the `token_classification` head (per-token logits [B, L, C] from the backbone's per-token
// features) and the `token_cross_entropy` loss, for LabelKind::kTokenClass labels (tags [B, L], kIgnoreIndex
// where a token has no tag: <cls>, padding, a word's later sub-word pieces).
//
//   tasks: {ner: {label: ner, head: {type: token_classification, hidden: [64], dropout: 0.1},
//                 loss: token_cross_entropy, metrics: [span_f1, token_accuracy]}}
//   loss: {type: token_cross_entropy, label_smoothing: 0.1}
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "heads/head.h"
#include "heads/mlp_head.h"

namespace mtl {

/// The MLP head body applied at every position: [B, L, D] -> logits [B, L, C]; predict() = argmax -> [B, L].
class TokenClassificationHeadImpl : public MlpHeadImpl {
 public:
  TokenClassificationHeadImpl(int64_t in_features, int64_t num_tags, MlpHeadOptions options);
  at::Tensor predict(const at::Tensor& output) const override;
  bool token_level() const override { return true; }
};

/// Options: the MLP options (hidden, dropout, activation) and `num_tags` (default: the label's size; a
/// different value is an error).
Head make_token_classification_head(const ConfigNode& options, const HeadContext& ctx);

/// Per-example mean cross-entropy over the example's tagged tokens, then the plain mean over examples:
///   l_i  = (1 / n_i) sum_{j : y_ij != kIgnoreIndex} ce(logits_ij, y_ij)     (0 when n_i = 0)
///   loss = mean_i l_i
/// (ce with label smoothing eps as in cross_entropy_loss). A mean over all tagged tokens of the batch would
/// weight long examples more and would not add up over shards; this one does, exactly.
at::Tensor token_cross_entropy_loss(const at::Tensor& logits, const at::Tensor& target, double label_smoothing = 0.0);

/// Reads `label_smoothing` (default 0).
LossFn make_token_cross_entropy_loss(const ConfigNode& options, const LabelInfo& label);

}  // namespace mtl
