// mlp backbone: flattens one input and applies Linear+activation layers.
//   model: {backbone: {type: mlp, hidden: [256, 256], activation: relu, dropout: 0.0}}
#pragma once

#include <torch/nn/modules/container/sequential.h>

#include "backbones/backbone.h"

namespace mtl {

struct MlpOptions {
  std::string input;
  std::vector<int64_t> hidden{256, 256};
  std::string activation = "relu";
  double dropout = 0.0;
};

class MlpBackboneImpl : public BackboneImpl {
 public:
  MlpBackboneImpl(const MlpOptions& options, int64_t in_features);
  at::Tensor forward(const TensorMap& inputs) override;
  int64_t output_dim() const override { return out_dim_; }
  std::vector<std::string> block_names() const override;

 private:
  MlpOptions options_;
  torch::nn::Sequential layers_{nullptr};
  int64_t out_dim_;
};

Backbone make_mlp_backbone(const ConfigNode& options, const DatasetSchema& schema);

/// Appends the activation named `name` (relu|gelu|tanh) to `seq`.
void append_activation(torch::nn::Sequential& seq, const std::string& name);

/// Linear + activation layers of widths `hidden` on `in_features` inputs; `out_dim` gets the last width
/// (in_features when `hidden` is empty). The mlp backbone and the multimodal trunk.
torch::nn::Sequential make_mlp_layers(int64_t in_features, const std::vector<int64_t>& hidden,
                                      const std::string& activation, int64_t& out_dim);

/// Runs `layers` (from make_mlp_layers) with dropout after each activation, from the thread's random stream
/// (see mtl/core/random.h).
at::Tensor run_mlp_layers(torch::nn::Sequential& layers, at::Tensor x, double dropout, bool training);

}  // namespace mtl
