// Multi-label classification: the `multilabel` head (one logit per label, [B, L]) and the
// `bce_with_logits` loss.
//
//   head: {type: multilabel, hidden: [32]}
//   loss: {type: bce_with_logits, pos_weight: [1, 3, 1]}
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "heads/head.h"
#include "heads/mlp_head.h"

namespace mtl {

/// Logits [B, L]; predict() = (logit > 0) as float 0/1 [B, L].
class MultiLabelHeadImpl : public MlpHeadImpl {
 public:
  MultiLabelHeadImpl(int64_t in_features, int64_t num_labels, MlpHeadOptions options);
  at::Tensor predict(const at::Tensor& output) const override;
};

/// Options: the MLP options (hidden, dropout, activation).
Head make_multilabel_head(const ConfigNode& options, const HeadContext& ctx);

struct BceWithLogitsOptions {
  std::vector<double> pos_weight;  // empty = 1 for every label, else one positive weight per label
};

/// Binary cross-entropy of logits x [B, L] against 0/1 targets y [B, L]:
///   l_ij = -(p_j * y_ij * log sigmoid(x_ij) + (1 - y_ij) * log(1 - sigmoid(x_ij)))
///   loss = mean over examples of the mean over labels (= mean over all B * L elements),
/// a plain per-example mean, so shard losses weighted by shard size add up to the batch loss.
at::Tensor bce_with_logits_loss(const at::Tensor& logits, const at::Tensor& target,
                                const BceWithLogitsOptions& options);

/// Reads `pos_weight` (optional, label.size positive numbers).
LossFn make_bce_with_logits_loss(const ConfigNode& options, const LabelInfo& label);

}  // namespace mtl
