// Token tagging: the `token_classification` head (per-token logits [B, L, C] from the backbone's per-token
// features) and the `token_cross_entropy` loss, for LabelKind::kTokenClass labels (tags [B, L], kIgnoreIndex
// where a token has no tag: <cls>, padding, a word's later sub-word pieces).
//
//   auto head = std::make_shared<mtl::TokenClassificationHeadImpl>(mtl::TokenClassificationHeadOptions(128, 9));
//   mtl::LossFn loss = mtl::TokenCrossEntropyLoss(mtl::TokenCrossEntropyLossOptions().label_smoothing(0.1));
//   YAML: tasks: {ner: {label: ner, head: {type: token_classification, hidden: [64], dropout: 0.1},
//                       loss: token_cross_entropy, metrics: [span_f1, token_accuracy]}}
//         loss: {type: token_cross_entropy, label_smoothing: 0.1}
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <cstdint>

#include "heads/head.h"
#include "heads/mlp_head.h"

namespace mtl {

/// The MLP options (hidden, dropout, activation) with out_features = the number of tags.
struct TokenClassificationHeadOptions : MlpHeadOptions {
  TokenClassificationHeadOptions(int64_t in_features, int64_t num_tags) : MlpHeadOptions(in_features, num_tags) {}
  explicit TokenClassificationHeadOptions(MlpHeadOptions mlp) : MlpHeadOptions(std::move(mlp)) {}
  /// The MLP options and `num_tags` (default: the label's size; a different value is an error).
  static TokenClassificationHeadOptions from_config(const ConfigNode& options, const HeadContext& ctx);
};

/// The MLP head body applied at every position: [B, L, D] -> logits [B, L, C]; predict() = argmax -> [B, L].
class TokenClassificationHeadImpl : public MlpHeadImpl {
 public:
  explicit TokenClassificationHeadImpl(MlpHeadOptions options) : MlpHeadImpl(std::move(options)) {}
  at::Tensor predict(const at::Tensor& output) const override;
  bool token_level() const override { return true; }
};

/// Registry factory: from_config + constructor.
Head make_token_classification_head(const ConfigNode& options, const HeadContext& ctx);

struct TokenCrossEntropyLossOptions {
  TORCH_ARG(double, label_smoothing) = 0.0;  // eps in [0, 1)

 public:
  /// Reads `label_smoothing` (default 0).
  static TokenCrossEntropyLossOptions from_config(const ConfigNode& options);
  /// Throws mtl::Error(key, expected) for the first bad value.
  void validate() const;
};

/// Per-example mean cross-entropy over the example's tagged tokens, then the plain mean over examples:
///   l_i  = (1 / n_i) sum_{j : y_ij != kIgnoreIndex} ce(logits_ij, y_ij)     (0 when n_i = 0)
///   loss = mean_i l_i
/// (ce with label smoothing eps as in cross_entropy_loss). A mean over all tagged tokens of the batch would
/// weight long examples more and would not add up over shards; this one does, exactly.
at::Tensor token_cross_entropy_loss(const at::Tensor& logits, const at::Tensor& target,
                                    const TokenCrossEntropyLossOptions& options = {});

/// token_cross_entropy_loss with fixed options, callable as a LossFn; the constructor checks the options.
class TokenCrossEntropyLoss {
 public:
  explicit TokenCrossEntropyLoss(TokenCrossEntropyLossOptions options = {});
  at::Tensor operator()(const at::Tensor& logits, const at::Tensor& target) const;
  const TokenCrossEntropyLossOptions& options() const { return options_; }

 private:
  TokenCrossEntropyLossOptions options_;
};

/// Registry factory: from_config + TokenCrossEntropyLoss.
LossFn make_token_cross_entropy_loss(const ConfigNode& options, const LabelInfo& label);

}  // namespace mtl
