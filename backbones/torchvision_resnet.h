// torchvision's ResNets (resnet18, resnet34, resnet50, resnet101, resnet152, wide_resnet50_2, wide_resnet101_2)
// with torchvision's module structure and parameter names (conv1, bn1, layer1.0.conv1, ..., layer4.1.downsample.0),
// so that a torchvision state_dict loads without rename rules; the classifier (fc) is left out: the backbone
// gives the pooled features before it (512 or 2048 per example), the heads take it from there.
// Any input size works (adaptive average pooling); any channel count (conv1 takes the input's channels).
//   auto trunk = std::make_shared<mtl::TorchvisionResNetImpl>(mtl::TorchvisionResNetOptions("image", 3, "resnet50"));
//   YAML: model: {backbone: {type: resnet18}}   # options: memory_format, zero_init_residual
#pragma once

#include <torch/arg.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>

#include "backbones/backbone.h"

namespace mtl {

struct TorchvisionResNetOptions {
  TorchvisionResNetOptions(std::string input, int64_t in_channels, std::string arch)
      : input_(std::move(input)), in_channels_(in_channels), arch_(std::move(arch)) {}
  TORCH_ARG(std::string, input);      // an image input [C, H, W]
  TORCH_ARG(int64_t, in_channels);    // its C: conv1's input channels
  TORCH_ARG(std::string, arch);       // resnet18 | resnet34 | resnet50 | resnet101 | resnet152 | wide_resnet50_2 | ...
  TORCH_ARG(bool, zero_init_residual) = false;  // torchvision's option: each block's last BN starts at weight 0
  TORCH_ARG(bool, channels_last) = true;        // memory_format: NHWC activations (faster on CPU; same function)

 public:
  /// Reads `input` (select_input), `memory_format` and `zero_init_residual`; `arch` is the backbone's type.
  static TorchvisionResNetOptions from_config(const std::string& arch, const ConfigNode& options,
                                              const DatasetSchema& schema);
  /// Throws mtl::Error(key, expected) for the first bad value.
  void validate() const;
};

/// The architectures TorchvisionResNetOptions::arch accepts, in registry order.
const std::vector<std::string>& torchvision_resnet_archs();

/// torchvision's BasicBlock (expansion 1) and Bottleneck (expansion 4) under their parameter names.
class TorchvisionBlockImpl : public torch::nn::Module {
 public:
  TorchvisionBlockImpl(int64_t in, int64_t planes, int64_t stride, bool bottleneck, int64_t width);
  at::Tensor forward(const at::Tensor& x);
  /// The BN whose weight zero_init_residual zeroes (bn2 or bn3).
  torch::nn::BatchNorm2d last_bn() const { return bn3_ ? bn3_ : bn2_; }

 private:
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr}, bn3_{nullptr};
  torch::nn::Sequential downsample_{nullptr};
  int64_t stride_ = 1;
};
TORCH_MODULE(TorchvisionBlock);

class TorchvisionResNetImpl : public BackboneImpl {
 public:
  /// Throws mtl::Error "TorchvisionResNetOptions.<key>: ..." for bad options.
  explicit TorchvisionResNetImpl(TorchvisionResNetOptions options);
  at::Tensor forward(const TensorMap& inputs) override;
  int64_t output_dim() const override { return output_dim_; }
  std::vector<std::string> block_names() const override;
  int64_t num_stages() const override { return 5; }  // the stem (conv1, bn1, relu, maxpool), layer1..layer4
  at::Tensor stage(int64_t i, const TensorMap& inputs, const at::Tensor& x) override;
  /// torchvision's initialisation: Kaiming-normal (fan_out, relu) convolutions, BN weight 1 and bias 0.
  void reset_parameters(at::Generator& gen) override;
  const TorchvisionResNetOptions& options() const { return options_; }

 private:
  TorchvisionResNetOptions options_;
  torch::nn::Conv2d conv1_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr};
  std::vector<torch::nn::Sequential> layers_;
  int64_t output_dim_ = 0;
};

/// Registry factory for `arch` (one registered per architecture name).
BackboneFactory torchvision_resnet_factory(const std::string& arch);

}  // namespace mtl
