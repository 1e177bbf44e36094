#include "backbones/resnet.h"

#include "mtl/config/config_node.h"
#include "mtl/config/option_check.h"

namespace mtl {

namespace {
torch::nn::Conv2d conv3x3(int64_t in, int64_t out, int64_t stride) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false));
}
}  // namespace

BasicBlockImpl::BasicBlockImpl(int64_t in, int64_t out, int64_t stride, bool batch_norm) {
  conv1_ = register_module("conv1", conv3x3(in, out, stride));
  conv2_ = register_module("conv2", conv3x3(out, out, 1));
  if (batch_norm) {
    bn1_ = register_module("bn1", torch::nn::BatchNorm2d(out));
    bn2_ = register_module("bn2", torch::nn::BatchNorm2d(out));
  }
  if (stride != 1 || in != out) {
    // The projection is a 1x1 convolution with stride `stride`; it runs as a subsample followed by a
    // stride-1 1x1 convolution (the same function and the same weights). LibTorch 1.13's oneDNN 2.6 path
    // for strided 1x1 convolutions in channels-last memory corrupts the heap in backward when more than one
    // OpenMP thread runs it (plain PyTorch reproduces it: 4->8 channels, batch 11, 36x36, two threads).
    proj_stride_ = stride;
    proj_ = register_module("proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 1).bias(false)));
    if (batch_norm) proj_bn_ = register_module("proj_bn", torch::nn::BatchNorm2d(out));
  }
}

at::Tensor BasicBlockImpl::forward(const at::Tensor& x) {
  at::Tensor y = conv1_->forward(x);
  if (bn1_) y = bn1_->forward(y);
  y = torch::relu(y);
  y = conv2_->forward(y);
  if (bn2_) y = bn2_->forward(y);
  at::Tensor shortcut = x;
  if (proj_) {
    at::Tensor sub = proj_stride_ == 1 ? x : x.slice(2, 0, c10::nullopt, proj_stride_).slice(3, 0, c10::nullopt, proj_stride_);
    shortcut = proj_->forward(sub);
    if (proj_bn_) shortcut = proj_bn_->forward(shortcut);
  }
  return torch::relu(y + shortcut);
}

ResNetBackboneOptions ResNetBackboneOptions::from_config(const ConfigNode& n, const DatasetSchema& schema) {
  const InputInfo& in = select_input(n, schema);
  n.check(in.shape.size() == 3, "input",
          "resnet needs an image input [C, H, W]; input '" + in.name + "' has " +
              std::to_string(in.shape.size()) + " dimensions");
  ResNetBackboneOptions o(in.name, in.shape[0]);
  o.channels(n.get<std::vector<int64_t>>("channels", o.channels()));
  o.blocks(n.get<int64_t>("blocks", o.blocks()));
  o.norm(n.get<std::string>("norm", o.norm()));
  validate_config(n, [&] { o.validate(); });
  o.channels_last(n.choice("memory_format", std::string("channels_last"), {"channels_last", "contiguous"}) ==
                  "channels_last");
  return o;
}

void ResNetBackboneOptions::validate() const {
  check(!channels_.empty(), "channels", "expected at least one stage width");
  for (int64_t c : channels_) check(c > 0, "channels", "expected positive stage widths");
  check(blocks_ > 0, "blocks", "expected a positive number, got " + std::to_string(blocks_));
  check_choice("norm", norm_, {"batch", "none"});
  check(!input_.empty(), "input", "expected the name of the input to read");
  check(in_channels_ > 0, "in_channels", "expected a positive number, got " + std::to_string(in_channels_));
}

ResNetBackboneImpl::ResNetBackboneImpl(ResNetBackboneOptions options) : options_(std::move(options)) {
  validate_options("ResNetBackboneOptions", [&] { options_.validate(); });
  const auto& o = options_;
  bool bn = o.norm() == "batch";
  stem_ = register_module("stem", conv3x3(o.in_channels(), o.channels()[0], 1));
  if (bn) stem_bn_ = register_module("stem_bn", torch::nn::BatchNorm2d(o.channels()[0]));
  blocks_ = register_module("blocks", torch::nn::ModuleList());
  int64_t in = o.channels()[0];
  for (size_t s = 0; s < o.channels().size(); ++s) {
    for (int64_t b = 0; b < o.blocks(); ++b) {
      int64_t stride = (s > 0 && b == 0) ? 2 : 1;
      blocks_->push_back(BasicBlock(in, o.channels()[s], stride, bn));
      in = o.channels()[s];
    }
  }
  if (o.channels_last()) use_channels_last(*this);
}

at::Tensor ResNetBackboneImpl::forward(const TensorMap& inputs) {
  at::Tensor x;
  for (int64_t i = 0; i < num_stages(); ++i) x = stage(i, inputs, x);
  return x;
}

// Stage 0: the stem; stage i: block i - 1; the last one also pools.
at::Tensor ResNetBackboneImpl::stage(int64_t i, const TensorMap& inputs, const at::Tensor& in) {
  at::Tensor x;
  if (i == 0) {
    x = inputs.at(options_.input());
    if (options_.channels_last()) x = x.contiguous(at::MemoryFormat::ChannelsLast);
    x = stem_->forward(x);
    if (stem_bn_) x = stem_bn_->forward(x);
    x = torch::relu(x);
  } else {
    x = blocks_[static_cast<size_t>(i - 1)]->as<BasicBlock>()->forward(in);
  }
  return i + 1 == num_stages() ? x.mean({2, 3}) : x;
}

std::vector<std::string> ResNetBackboneImpl::block_names() const {
  std::vector<std::string> out{stem_bn_ ? "stem,stem_bn" : "stem"};
  for (size_t i = 0; i < blocks_->size(); ++i) out.push_back("blocks." + std::to_string(i));
  return out;
}

Backbone make_resnet_backbone(const ConfigNode& n, const DatasetSchema& schema) {
  return std::make_shared<ResNetBackboneImpl>(ResNetBackboneOptions::from_config(n, schema));
}

}  // namespace mtl
