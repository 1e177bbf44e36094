// mlp backbone: flattens one input and applies Linear -> activation -> dropout layers (an MlpBlock).
//
//   auto trunk = std::make_shared<mtl::MlpBackboneImpl>(mtl::MlpBackboneOptions("features", 20).hidden({64, 64}));
//   YAML: model: {backbone: {type: mlp, hidden: [256, 256], activation: relu, dropout: 0.0}}
//   Parameters: layers.0.weight, layers.0.bias, layers.2.weight, ... (even indices: see heads/mlp_block.h)
#pragma once

#include <torch/arg.h>

#include "backbones/backbone.h"
#include "heads/mlp_block.h"

namespace mtl {

struct MlpBackboneOptions {
  MlpBackboneOptions(std::string input, int64_t in_features)
      : input_(std::move(input)), in_features_(in_features) {}
  TORCH_ARG(std::string, input);                        // the input it reads, flattened per example
  TORCH_ARG(int64_t, in_features);                      // values per example of that input
  TORCH_ARG(std::vector<int64_t>, hidden) = {256, 256}; // layer widths; empty = the flattened input
  TORCH_ARG(std::string, activation) = "relu";          // relu | gelu | tanh
  TORCH_ARG(double, dropout) = 0.0;                     // in [0, 1), after every activation

 public:
  /// Reads `input` (select_input), `hidden`, `activation` and `dropout`.
  static MlpBackboneOptions from_config(const ConfigNode& options, const DatasetSchema& schema);
  /// Throws mtl::Error(key, expected) for the first bad value.
  void validate() const;
};

class MlpBackboneImpl : public BackboneImpl {
 public:
  /// Throws mtl::Error "MlpBackboneOptions.<key>: ..." for bad options.
  explicit MlpBackboneImpl(MlpBackboneOptions options);
  at::Tensor forward(const TensorMap& inputs) override;
  int64_t output_dim() const override { return layers_->out_features(); }
  std::vector<std::string> block_names() const override;
  int64_t num_stages() const override { return static_cast<int64_t>(layers_->num_layers()); }
  at::Tensor stage(int64_t i, const TensorMap& inputs, const at::Tensor& x) override;
  const MlpBackboneOptions& options() const { return options_; }

 private:
  MlpBackboneOptions options_;
  MlpBlock layers_{nullptr};
};

/// Registry factory: from_config + constructor.
Backbone make_mlp_backbone(const ConfigNode& options, const DatasetSchema& schema);

}  // namespace mtl
