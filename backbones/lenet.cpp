#include "backbones/lenet.h"

#include "mtl/config/config_node.h"
#include "mtl/config/option_check.h"
#include "mtl/core/random.h"

namespace mtl {

LeNetBackboneOptions LeNetBackboneOptions::from_config(const ConfigNode& n, const DatasetSchema& schema) {
  const InputInfo& in = select_input(n, schema);
  LeNetBackboneOptions o(in.name, in.shape);
  o.channels(n.get<std::vector<int64_t>>("channels", o.channels()));
  o.out_features(n.get<int64_t>("out_features", o.out_features()));
  o.dropout(n.get<double>("dropout", o.dropout()));
  o.channels_last(n.choice("memory_format", std::string("channels_last"), {"channels_last", "contiguous"}) ==
                  "channels_last");
  validate_config(n, [&] { o.validate(); });
  return o;
}

void LeNetBackboneOptions::validate() const {
  const auto& shape = image_shape_;
  check(shape.size() == 3, "input",
        "lenet needs an image input [C, H, W]; input '" + input_ + "' has " + std::to_string(shape.size()) +
            " dimensions");
  check(shape[1] >= 24 && shape[2] >= 24, "input", "lenet needs images of at least 24x24");
  check(shape[0] > 0, "input", "lenet needs at least one image channel");
  check(channels_.size() == 2 && channels_[0] > 0 && channels_[1] > 0, "channels",
        "expected two positive channel counts");
  check(out_features_ > 0, "out_features", "expected a positive number, got " + std::to_string(out_features_));
  check(dropout_ >= 0 && dropout_ < 1, "dropout", "expected a value in [0, 1)");
}

LeNetBackboneImpl::LeNetBackboneImpl(LeNetBackboneOptions options) : options_(std::move(options)) {
  validate_options("LeNetBackboneOptions", [&] { options_.validate(); });
  const auto& o = options_;
  const int64_t c = o.image_shape()[0], h = o.image_shape()[1], w = o.image_shape()[2];
  const int64_t c1 = o.channels()[0], c2 = o.channels()[1];
  conv1_ = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(c, c1, 9)));
  conv2_ = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(c1, c2, 5)));
  int64_t h2 = ((h - 8) / 2 - 4) / 2, w2 = ((w - 8) / 2 - 4) / 2;
  flat_ = c2 * h2 * w2;
  fc_ = register_module("fc", torch::nn::Linear(flat_, o.out_features()));
  if (o.channels_last()) use_channels_last(*this);
}

at::Tensor LeNetBackboneImpl::forward(const TensorMap& inputs) {
  at::Tensor x;
  for (int64_t i = 0; i < 3; ++i) x = stage(i, inputs, x);
  return x;
}

at::Tensor LeNetBackboneImpl::stage(int64_t i, const TensorMap& inputs, const at::Tensor& in) {
  if (i == 0) {
    at::Tensor x = inputs.at(options_.input());
    if (options_.channels_last()) x = x.contiguous(at::MemoryFormat::ChannelsLast);
    return torch::relu(torch::max_pool2d(conv1_->forward(x), 2));
  }
  if (i == 1) return torch::relu(torch::max_pool2d(conv2_->forward(in), 2));
  at::Tensor x = in.reshape({in.size(0), flat_});
  if (options_.dropout() > 0) x = mtl::dropout(x, options_.dropout(), is_training());
  return torch::relu(fc_->forward(x));
}

Backbone make_lenet_backbone(const ConfigNode& n, const DatasetSchema& schema) {
  return std::make_shared<LeNetBackboneImpl>(LeNetBackboneOptions::from_config(n, schema));
}

}  // namespace mtl
