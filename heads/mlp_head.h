// The MLP body shared by the built-in heads: trunk features [B, D] -> [dropout -> Linear -> activation]
// per hidden layer -> dropout -> Linear -> [B, out]. Each head type (classification, multilabel,
// regression) derives from MlpHeadImpl and adds only what differs: the output width, the output's
// shape and predict().
//
//   YAML: head: {type: classification, hidden: [64], dropout: 0.1, activation: gelu}
//   Parameters: hidden.0.weight, hidden.0.bias, ..., out.weight, out.bias
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>

#include <cstdint>
#include <string>
#include <vector>

#include "heads/head.h"

namespace mtl {

class ConfigNode;

struct MlpHeadOptions {
  std::vector<int64_t> hidden;     // widths of the hidden layers; empty = a single Linear
  double dropout = 0.0;            // in [0, 1); applied to the input of every Linear layer
  std::string activation = "relu"; // relu | gelu | tanh, after every hidden Linear

  /// Reads `hidden`, `dropout` and `activation` from a head's option node (defaults as above).
  static MlpHeadOptions from_config(const ConfigNode& options);
};

class MlpHeadImpl : public HeadImpl {
 public:
  MlpHeadImpl(int64_t in_features, int64_t out_features, MlpHeadOptions options);

  /// [B, in_features] -> [B, out_features].
  at::Tensor forward(const at::Tensor& features) override;

  const MlpHeadOptions& options() const { return options_; }
  int64_t out_features() const { return out_features_; }

 private:
  MlpHeadOptions options_;
  int64_t out_features_;
  torch::nn::ModuleList hidden_;
  torch::nn::Linear out_{nullptr};
};

}  // namespace mtl
