// Backbone interface: the shared trunk that maps a batch's inputs to one feature vector per example.
// Adding a backbone = one file in backbones/ + one line in register_builtin_backbones().
#pragma once

#include <torch/nn/module.h>

#include <functional>
#include <memory>
#include <string>

#include "mtl/core/batch.h"
#include "mtl/core/registry.h"
#include "mtl/core/weight_init.h"

namespace mtl {

class ConfigNode;

/// What a backbone gives the heads: one feature vector per example and, from text encoders, one per token.
struct Features {
  at::Tensor pooled;  // [B, D]
  at::Tensor tokens;  // [B, L, D] aligned with the input's token ids, or undefined
};

class BackboneImpl : public torch::nn::Module {
 public:
  /// Features [B, output_dim()] for the batch's inputs.
  virtual at::Tensor forward(const TensorMap& inputs) = 0;
  /// Pooled and per-token features; backbones with per-token features override this (and has_token_features).
  virtual Features encode(const TensorMap& inputs) { return Features{forward(inputs), at::Tensor()}; }
  virtual bool has_token_features() const { return false; }
  virtual int64_t output_dim() const = 0;
  /// Ordered blocks, input side first (`freeze.blocks`, `optimizer.layer_lr_decay`): each the name of a
  /// submodule, or several joined by commas ("embedding,position"). Empty (the default): the backbone's
  /// parameterised children, ModuleList and Sequential elements counted one by one.
  virtual std::vector<std::string> block_names() const { return {}; }
  /// Staged forward, for the layer-wise architectures (cross_stitch, branch: mtl/model/layerwise_architectures.h),
  /// which act between stages. Stage i maps stage i - 1's output (stage 0: the inputs; `x` undefined) to its
  /// own, the last stage's output is forward()'s pooled features, and stage i's parameters are exactly block
  /// i's (block_names()). 0 (the default): the backbone cannot run in stages.
  virtual int64_t num_stages() const { return 0; }
  virtual at::Tensor stage(int64_t i, const TensorMap& inputs, const at::Tensor& x);
  /// Draws the initial weights again from the run's generator (mtl/core/weight_init.h); a backbone with an
  /// initialisation scheme of its own overrides this and calls reset_module_parameters first.
  virtual void reset_parameters(at::Generator& gen) { reset_module_parameters(*this, gen); }
};
using Backbone = std::shared_ptr<BackboneImpl>;

/// Stores every 4-D parameter (convolution weights) of `module` channels-last (NHWC strides): with the
/// activations in channels_last too, LibTorch's oneDNN convolutions and pools skip layout reorders.
void use_channels_last(torch::nn::Module& module);

/// Picks the input a backbone reads: the configured `input` key, or the only input the dataset has.
const InputInfo& select_input(const ConfigNode& options, const DatasetSchema& schema);

using BackboneFactory = std::function<Backbone(const ConfigNode& options, const DatasetSchema& schema)>;
Registry<BackboneFactory>& backbone_registry();

}  // namespace mtl
