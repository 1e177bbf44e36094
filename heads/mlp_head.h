// The MLP body shared by the built-in heads: trunk features [B, D] -> dropout -> MlpBlock (Linear ->
// activation -> dropout per hidden layer) -> Linear -> [B, out]. Each head type (classification,
// multilabel, regression, token tagging) derives from MlpHeadImpl and adds only what differs: what its
// output means, its shape and predict().
//
//   auto head = std::make_shared<mtl::RegressionHeadImpl>(mtl::RegressionHeadOptions(64, 1).hidden({32}));
//   YAML: head: {type: classification, hidden: [64], dropout: 0.1, activation: gelu}
//   Parameters: hidden.0.weight, hidden.0.bias, ..., out.weight, out.bias (pinned by a test: checkpoints
//   and exported weights store these names)
#pragma once

#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>

#include <cstdint>
#include <string>
#include <vector>

#include "heads/head.h"
#include "heads/mlp_block.h"

namespace mtl {

class ConfigNode;

struct MlpHeadOptions {
  MlpHeadOptions(int64_t in_features, int64_t out_features);
  TORCH_ARG(int64_t, in_features);              // width of the trunk features
  TORCH_ARG(int64_t, out_features);             // classes, labels, dimensions or tags
  TORCH_ARG(std::vector<int64_t>, hidden) = {}; // widths of the hidden layers; empty = a single Linear
  TORCH_ARG(double, dropout) = 0.0;             // in [0, 1); applied to the input of every Linear layer
  TORCH_ARG(std::string, activation) = "relu";  // relu | gelu | tanh, after every hidden Linear

 public:
  /// Reads `hidden`, `dropout` and `activation` from a head's option node (defaults as above).
  static MlpHeadOptions from_config(const ConfigNode& options, int64_t in_features, int64_t out_features);
  /// Throws mtl::Error(key, expected) for the first bad value.
  void validate() const;
};

class MlpHeadImpl : public HeadImpl {
 public:
  /// Throws mtl::Error "MlpHeadOptions.<key>: ..." for bad options.
  explicit MlpHeadImpl(MlpHeadOptions options);

  /// [B, in_features] -> [B, out_features] (or [B, L, in] -> [B, L, out]).
  at::Tensor forward(const at::Tensor& features) override;

  const MlpHeadOptions& options() const { return options_; }
  int64_t out_features() const { return options_.out_features(); }

 private:
  MlpHeadOptions options_;
  MlpBlock hidden_{nullptr};
  torch::nn::Linear out_{nullptr};
};

}  // namespace mtl
