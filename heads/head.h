// Head and loss interfaces. A head maps trunk features [B, D] to one task's outputs; a loss compares
// those outputs with the task's targets and returns the *mean over the batch's examples*, so that
// shard losses weighted by shard size add up exactly to the full-batch loss.
// Adding a head = one file in heads/ + one line in register_builtin_heads().
#pragma once

#include <torch/nn/module.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mtl/core/batch.h"
#include "mtl/core/loss.h"  // LossFn
#include "mtl/core/registry.h"

namespace mtl {

class ConfigNode;

class HeadImpl : public torch::nn::Module {
 public:
  /// Outputs for features [B, D]; token-level heads get per-token features [B, L, D].
  virtual at::Tensor forward(const at::Tensor& features) = 0;
  /// Predictions in the label's own form: class index [B] (kClass), 0/1 [B, L] (kMultiLabel),
  /// values (kReal), tag index [B, L] (kTokenClass).
  virtual at::Tensor predict(const at::Tensor& output) const = 0;
  /// Reads the backbone's per-token features instead of the pooled ones.
  virtual bool token_level() const { return false; }
  /// Dense prediction heads read the trunk's feature maps (TrunkOutput::maps) through forward_maps instead.
  virtual bool dense() const { return false; }
  virtual at::Tensor forward_maps(const std::vector<at::Tensor>& maps);
};
using Head = std::shared_ptr<HeadImpl>;

struct HeadContext {
  int64_t in_features = 0;
  LabelInfo label;
  std::vector<int64_t> map_channels;  // dense heads: the channels of each feature map they read
};

struct HeadEntry {
  std::function<Head(const ConfigNode& options, const HeadContext& ctx)> make;
  LabelKind label_kind;                      // labels this head fits
  std::string default_loss;
  std::vector<std::string> default_metrics;
};
Registry<HeadEntry>& head_registry();

struct LossEntry {
  std::function<LossFn(const ConfigNode& options, const LabelInfo& label)> make;
  std::vector<LabelKind> label_kinds;  // labels this loss fits
};
Registry<LossEntry>& loss_registry();

}  // namespace mtl
