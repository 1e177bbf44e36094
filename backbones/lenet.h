// lenet backbone: the MultiLeNet trunk of the Pareto-MTL benchmark, for 36x36 (or other) images:
//   conv C->10 k9, maxpool 2, relu, conv 10->20 k5, maxpool 2, relu, flatten, fc -> 50, relu.
//   model: {backbone: {type: lenet, channels: [10, 20], out_features: 50, memory_format: channels_last}}
// memory_format channels_last (default) runs the convolutions and pools in NHWC, LibTorch's fast CPU path for
// them (oneDNN convolutions without layout reorders, vectorised pooling): the same function, computed faster.
#pragma once

#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>

#include "backbones/backbone.h"

namespace mtl {

struct LeNetOptions {
  std::string input;
  std::vector<int64_t> image_shape;  // C, H, W
  int64_t channels1 = 10;
  int64_t channels2 = 20;
  int64_t out_features = 50;
  double dropout = 0.0;
  bool channels_last = true;
};

class LeNetBackboneImpl : public BackboneImpl {
 public:
  explicit LeNetBackboneImpl(const LeNetOptions& options);
  at::Tensor forward(const TensorMap& inputs) override;
  int64_t output_dim() const override { return options_.out_features; }
  std::vector<std::string> block_names() const override { return {"conv1", "conv2", "fc"}; }

 private:
  LeNetOptions options_;
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  torch::nn::Linear fc_{nullptr};
  int64_t flat_ = 0;
};

Backbone make_lenet_backbone(const ConfigNode& options, const DatasetSchema& schema);

}  // namespace mtl
