// Multi-label classification: the `multilabel` head (one logit per label, [B, L]) and the
// `bce_with_logits` loss.
//
//   auto head = std::make_shared<mtl::MultiLabelHeadImpl>(mtl::MultiLabelHeadOptions(64, 5).hidden({32}));
//   mtl::LossFn loss = mtl::BceWithLogitsLoss(mtl::BceWithLogitsLossOptions().pos_weight({1, 3, 1, 1, 1}));
//   YAML: head: {type: multilabel, hidden: [32]}
//         loss: {type: bce_with_logits, pos_weight: [1, 3, 1]}
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <cstdint>
#include <vector>

#include "heads/head.h"
#include "heads/mlp_head.h"

namespace mtl {

/// The MLP options (hidden, dropout, activation) with out_features = the number of labels.
struct MultiLabelHeadOptions : MlpHeadOptions {
  MultiLabelHeadOptions(int64_t in_features, int64_t num_labels) : MlpHeadOptions(in_features, num_labels) {}
  explicit MultiLabelHeadOptions(MlpHeadOptions mlp) : MlpHeadOptions(std::move(mlp)) {}
  /// The MLP options; the label's size gives the number of labels.
  static MultiLabelHeadOptions from_config(const ConfigNode& options, const HeadContext& ctx);
};

/// Logits [B, L]; predict() = (logit > 0) as float 0/1 [B, L].
class MultiLabelHeadImpl : public MlpHeadImpl {
 public:
  explicit MultiLabelHeadImpl(MlpHeadOptions options) : MlpHeadImpl(std::move(options)) {}
  at::Tensor predict(const at::Tensor& output) const override;
};

/// Registry factory: from_config + constructor.
Head make_multilabel_head(const ConfigNode& options, const HeadContext& ctx);

struct BceWithLogitsLossOptions {
  TORCH_ARG(std::vector<double>, pos_weight) = {};  // empty = 1 for every label, else one positive weight per label

 public:
  /// Reads `pos_weight` (optional, label.size positive numbers).
  static BceWithLogitsLossOptions from_config(const ConfigNode& options, const LabelInfo& label);
  /// Throws mtl::Error(key, expected) for the first bad value.
  void validate() const;
};

/// Binary cross-entropy of logits x [B, L] against 0/1 targets y [B, L]:
///   l_ij = -(p_j * y_ij * log sigmoid(x_ij) + (1 - y_ij) * log(1 - sigmoid(x_ij)))
///   loss = mean over examples of the mean over labels (= mean over all B * L elements),
/// a plain per-example mean, so shard losses weighted by shard size add up to the batch loss.
at::Tensor bce_with_logits_loss(const at::Tensor& logits, const at::Tensor& target,
                                const BceWithLogitsLossOptions& options = {});

/// bce_with_logits_loss with fixed options, callable as a LossFn; the constructor checks the options.
class BceWithLogitsLoss {
 public:
  explicit BceWithLogitsLoss(BceWithLogitsLossOptions options = {});
  at::Tensor operator()(const at::Tensor& logits, const at::Tensor& target) const;
  const BceWithLogitsLossOptions& options() const { return options_; }

 private:
  BceWithLogitsLossOptions options_;
};

/// Registry factory: from_config + BceWithLogitsLoss.
LossFn make_bce_with_logits_loss(const ConfigNode& options, const LabelInfo& label);

}  // namespace mtl
