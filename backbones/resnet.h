// resnet backbone: a small configurable residual network for images.
// A 3x3 stem, then one stage per entry of `channels` (the first at stride 1, the others at stride 2),
// each of `blocks` basic blocks (two 3x3 convolutions + identity or 1x1 projection shortcut), then global
// average pooling to `channels.back()` features.
//   auto trunk = std::make_shared<mtl::ResNetBackboneImpl>(mtl::ResNetBackboneOptions("image", 3).channels({16, 32}));
//   YAML: model: {backbone: {type: resnet, channels: [16, 32, 64], blocks: 1, norm: batch, memory_format: channels_last}}
#pragma once

#include <torch/arg.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>

#include "backbones/backbone.h"

namespace mtl {

struct ResNetBackboneOptions {
  ResNetBackboneOptions(std::string input, int64_t in_channels)
      : input_(std::move(input)), in_channels_(in_channels) {}
  TORCH_ARG(std::string, input);                             // an image input [C, H, W]
  TORCH_ARG(int64_t, in_channels);                           // its C
  TORCH_ARG(std::vector<int64_t>, channels) = {16, 32, 64};  // one stage per width
  TORCH_ARG(int64_t, blocks) = 1;                            // basic blocks per stage
  TORCH_ARG(std::string, norm) = "batch";                    // batch | none
  TORCH_ARG(bool, channels_last) = true;  // memory_format: NHWC activations (faster on CPU; same function)

 public:
  /// Reads `input` (select_input), `channels`, `blocks`, `norm` and `memory_format`.
  static ResNetBackboneOptions from_config(const ConfigNode& options, const DatasetSchema& schema);
  /// Throws mtl::Error(key, expected) for the first bad value.
  void validate() const;
};

class BasicBlockImpl : public torch::nn::Module {
 public:
  BasicBlockImpl(int64_t in, int64_t out, int64_t stride, bool batch_norm);
  at::Tensor forward(const at::Tensor& x);

 private:
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, proj_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr}, proj_bn_{nullptr};
  int64_t proj_stride_ = 1;
};
TORCH_MODULE(BasicBlock);

class ResNetBackboneImpl : public BackboneImpl {
 public:
  /// Throws mtl::Error "ResNetBackboneOptions.<key>: ..." for bad options.
  explicit ResNetBackboneImpl(ResNetBackboneOptions options);
  at::Tensor forward(const TensorMap& inputs) override;
  int64_t output_dim() const override { return options_.channels().back(); }
  std::vector<std::string> block_names() const override;
  int64_t num_stages() const override { return 1 + static_cast<int64_t>(blocks_->size()); }
  at::Tensor stage(int64_t i, const TensorMap& inputs, const at::Tensor& x) override;
  const ResNetBackboneOptions& options() const { return options_; }

 private:
  ResNetBackboneOptions options_;
  torch::nn::Conv2d stem_{nullptr};
  torch::nn::BatchNorm2d stem_bn_{nullptr};
  torch::nn::ModuleList blocks_{nullptr};
};

/// Registry factory: from_config + constructor.
Backbone make_resnet_backbone(const ConfigNode& options, const DatasetSchema& schema);

}  // namespace mtl
