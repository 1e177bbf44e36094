// resnet backbone: a small configurable residual network for images.
// A 3x3 stem, then one stage per entry of `channels` (the first at stride 1, the others at stride 2),
// each of `blocks` basic blocks (two 3x3 convolutions + identity or 1x1 projection shortcut), then global
// average pooling to `channels.back()` features.
//   model: {backbone: {type: resnet, channels: [16, 32, 64], blocks: 1, norm: batch, memory_format: channels_last}}
#pragma once

#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>

#include "backbones/backbone.h"

namespace mtl {

struct ResNetOptions {
  std::string input;
  int64_t in_channels = 1;
  std::vector<int64_t> channels{16, 32, 64};
  int64_t blocks = 1;
  std::string norm = "batch";  // batch | none
  bool channels_last = true;   // NHWC activations (faster on CPU; same function)
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
  explicit ResNetBackboneImpl(const ResNetOptions& options);
  at::Tensor forward(const TensorMap& inputs) override;
  int64_t output_dim() const override { return options_.channels.back(); }
  std::vector<std::string> block_names() const override;

 private:
  ResNetOptions options_;
  torch::nn::Conv2d stem_{nullptr};
  torch::nn::BatchNorm2d stem_bn_{nullptr};
  torch::nn::ModuleList blocks_{nullptr};
};

Backbone make_resnet_backbone(const ConfigNode& options, const DatasetSchema& schema);

}  // namespace mtl
