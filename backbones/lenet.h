// lenet backbone: the MultiLeNet trunk of the Pareto-MTL benchmark, for 36x36 (or other) images:
//   conv C->10 k9, maxpool 2, relu, conv 10->20 k5, maxpool 2, relu, flatten, fc -> 50, relu.
//   auto trunk = std::make_shared<mtl::LeNetBackboneImpl>(mtl::LeNetBackboneOptions("image", {1, 36, 36}));
//   YAML: model: {backbone: {type: lenet, channels: [10, 20], out_features: 50, memory_format: channels_last}}
// memory_format channels_last (default) runs the convolutions and pools in NHWC, LibTorch's fast CPU path for
// them (oneDNN convolutions without layout reorders, vectorised pooling): the same function, computed faster.
#pragma once

#include <torch/arg.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>

#include "backbones/backbone.h"

namespace mtl {

struct LeNetBackboneOptions {
  LeNetBackboneOptions(std::string input, std::vector<int64_t> image_shape)
      : input_(std::move(input)), image_shape_(std::move(image_shape)) {}
  TORCH_ARG(std::string, input);                     // an image input
  TORCH_ARG(std::vector<int64_t>, image_shape);      // C, H, W; H and W at least 24
  TORCH_ARG(std::vector<int64_t>, channels) = {10, 20};  // output channels of conv1 and conv2
  TORCH_ARG(int64_t, out_features) = 50;
  TORCH_ARG(double, dropout) = 0.0;                  // in [0, 1), before fc
  TORCH_ARG(bool, channels_last) = true;             // memory_format: channels_last | contiguous

 public:
  /// Reads `input` (select_input), `channels`, `out_features`, `dropout` and `memory_format`.
  static LeNetBackboneOptions from_config(const ConfigNode& options, const DatasetSchema& schema);
  /// Throws mtl::Error(key, expected) for the first bad value.
  void validate() const;
};

class LeNetBackboneImpl : public BackboneImpl {
 public:
  /// Throws mtl::Error "LeNetBackboneOptions.<key>: ..." for bad options.
  explicit LeNetBackboneImpl(LeNetBackboneOptions options);
  at::Tensor forward(const TensorMap& inputs) override;
  int64_t output_dim() const override { return options_.out_features(); }
  std::vector<std::string> block_names() const override { return {"conv1", "conv2", "fc"}; }
  int64_t num_stages() const override { return 3; }
  at::Tensor stage(int64_t i, const TensorMap& inputs, const at::Tensor& x) override;
  const LeNetBackboneOptions& options() const { return options_; }

 private:
  LeNetBackboneOptions options_;
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  torch::nn::Linear fc_{nullptr};
  int64_t flat_ = 0;
};

/// Registry factory: from_config + constructor.
Backbone make_lenet_backbone(const ConfigNode& options, const DatasetSchema& schema);

}  // namespace mtl
