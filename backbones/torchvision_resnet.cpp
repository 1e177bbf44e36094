#include "backbones/torchvision_resnet.h"

#include <torch/nn/functional/pooling.h>

#include <cmath>

#include "mtl/config/config_node.h"
#include "mtl/config/option_check.h"

namespace mtl {

namespace {

struct ResNetSpec {
  const char* name;
  bool bottleneck;
  int64_t blocks[4];
  int64_t width_per_group;
};
// torchvision.models.resnet: the block type, the blocks of layer1..layer4 and the bottleneck width per group.
constexpr ResNetSpec kSpecs[] = {
    {"resnet18", false, {2, 2, 2, 2}, 64},          {"resnet34", false, {3, 4, 6, 3}, 64},
    {"resnet50", true, {3, 4, 6, 3}, 64},           {"resnet101", true, {3, 4, 23, 3}, 64},
    {"resnet152", true, {3, 8, 36, 3}, 64},         {"wide_resnet50_2", true, {3, 4, 6, 3}, 128},
    {"wide_resnet101_2", true, {3, 4, 23, 3}, 128},
};

const ResNetSpec& spec(const std::string& arch) {
  for (const auto& s : kSpecs)
    if (arch == s.name) return s;
  throw Error("arch", "expected one of " + join(torchvision_resnet_archs()) + ", got '" + arch + "'");
}

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding((kernel - 1) / 2).bias(false));
}

}  // namespace

const std::vector<std::string>& torchvision_resnet_archs() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& s : kSpecs) v.emplace_back(s.name);
    return v;
  }();
  return names;
}

TorchvisionBlockImpl::TorchvisionBlockImpl(int64_t in, int64_t planes, int64_t stride, bool bottleneck, int64_t width)
    : stride_(stride) {
  const int64_t out = bottleneck ? planes * 4 : planes;
  if (bottleneck) {  // torchvision's ResNet v1.5: the stride is on the 3x3 convolution
    conv1_ = register_module("conv1", conv(in, width, 1));
    bn1_ = register_module("bn1", torch::nn::BatchNorm2d(width));
    conv2_ = register_module("conv2", conv(width, width, 3, stride));
    bn2_ = register_module("bn2", torch::nn::BatchNorm2d(width));
    conv3_ = register_module("conv3", conv(width, out, 1));
    bn3_ = register_module("bn3", torch::nn::BatchNorm2d(out));
  } else {
    conv1_ = register_module("conv1", conv(in, planes, 3, stride));
    bn1_ = register_module("bn1", torch::nn::BatchNorm2d(planes));
    conv2_ = register_module("conv2", conv(planes, planes, 3));
    bn2_ = register_module("bn2", torch::nn::BatchNorm2d(planes));
  }
  if (stride != 1 || in != out)
    // downsample.0 is a 1x1 convolution of stride `stride`; forward() runs it as a subsample then a stride-1
    // 1x1 convolution: the same function and weights, avoiding LibTorch 1.13's oneDNN bug for strided 1x1
    // convolutions in channels-last memory (see backbones/resnet.cpp).
    downsample_ = register_module("downsample", torch::nn::Sequential(conv(in, out, 1), torch::nn::BatchNorm2d(out)));
}

at::Tensor TorchvisionBlockImpl::forward(const at::Tensor& x) {
  at::Tensor y = torch::relu(bn1_->forward(conv1_->forward(x)));
  y = bn2_->forward(conv2_->forward(y));
  if (conv3_) y = bn3_->forward(conv3_->forward(torch::relu(y)));
  at::Tensor identity = x;
  if (downsample_) {
    at::Tensor sub = stride_ == 1 ? x : x.slice(2, 0, c10::nullopt, stride_).slice(3, 0, c10::nullopt, stride_);
    identity = downsample_[1]->as<torch::nn::BatchNorm2d>()->forward(downsample_[0]->as<torch::nn::Conv2d>()->forward(sub));
  }
  return torch::relu(y + identity);
}

TorchvisionResNetOptions TorchvisionResNetOptions::from_config(const std::string& arch, const ConfigNode& n,
                                                               const DatasetSchema& schema) {
  const InputInfo& in = select_input(n, schema);
  n.check(in.shape.size() == 3, "input",
          arch + " needs an image input [C, H, W]; input '" + in.name + "' has " + std::to_string(in.shape.size()) +
              " dimensions");
  TorchvisionResNetOptions o(in.name, in.shape[0], arch);
  o.zero_init_residual(n.get<bool>("zero_init_residual", o.zero_init_residual()));
  o.channels_last(n.choice("memory_format", std::string("channels_last"), {"channels_last", "contiguous"}) ==
                  "channels_last");
  validate_config(n, [&] { o.validate(); });
  return o;
}

void TorchvisionResNetOptions::validate() const {
  spec(arch_);
  check(!input_.empty(), "input", "expected the name of the input to read");
  check(in_channels_ > 0, "in_channels", "expected a positive number, got " + std::to_string(in_channels_));
}

TorchvisionResNetImpl::TorchvisionResNetImpl(TorchvisionResNetOptions options) : options_(std::move(options)) {
  validate_options("TorchvisionResNetOptions", [&] { options_.validate(); });
  const ResNetSpec& s = spec(options_.arch());
  conv1_ = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(options_.in_channels(), 64, 7)
                                                          .stride(2)
                                                          .padding(3)
                                                          .bias(false)));
  bn1_ = register_module("bn1", torch::nn::BatchNorm2d(64));
  int64_t in = 64;
  for (int64_t l = 0; l < 4; ++l) {
    const int64_t planes = int64_t{64} << l, stride = l == 0 ? 1 : 2;
    const int64_t width = planes * s.width_per_group / 64;
    torch::nn::Sequential layer;
    for (int64_t b = 0; b < s.blocks[l]; ++b) {
      layer->push_back(TorchvisionBlock(in, planes, b == 0 ? stride : 1, s.bottleneck, width));
      in = s.bottleneck ? planes * 4 : planes;
    }
    layers_.push_back(register_module("layer" + std::to_string(l + 1), layer));
  }
  output_dim_ = in;
  if (options_.channels_last()) use_channels_last(*this);
}

void TorchvisionResNetImpl::reset_parameters(at::Generator& gen) {
  reset_module_parameters(*this, gen);  // BN weight 1, bias 0, running statistics reset
  torch::NoGradGuard no_grad;
  for (auto& m : modules(/*include_self=*/false)) {
    if (auto* c = m->as<torch::nn::Conv2d>()) {  // kaiming_normal_(mode="fan_out", nonlinearity="relu")
      const auto& w = c->weight;
      const double fan_out = static_cast<double>(w.size(0) * w.size(2) * w.size(3));
      w.normal_(0.0, std::sqrt(2.0 / fan_out), gen);
    }
  }
  if (options_.zero_init_residual())
    for (auto& layer : layers_)
      for (size_t b = 0; b < layer->size(); ++b) layer[b]->as<TorchvisionBlock>()->last_bn()->weight.zero_();
}

at::Tensor TorchvisionResNetImpl::forward(const TensorMap& inputs) {
  at::Tensor x;
  for (int64_t i = 0; i < num_stages(); ++i) x = stage(i, inputs, x);
  return x;
}

at::Tensor TorchvisionResNetImpl::stage(int64_t i, const TensorMap& inputs, const at::Tensor& in) {
  at::Tensor x;
  if (i == 0) {
    x = inputs.at(options_.input());
    if (options_.channels_last()) x = x.contiguous(at::MemoryFormat::ChannelsLast);
    x = torch::relu(bn1_->forward(conv1_->forward(x)));
    x = torch::max_pool2d(x, 3, 2, 1);
  } else {
    x = layers_[static_cast<size_t>(i - 1)]->forward(in);
  }
  return i + 1 == num_stages() ? x.mean({2, 3}) : x;
}

std::vector<std::string> TorchvisionResNetImpl::block_names() const {
  return {"conv1,bn1", "layer1", "layer2", "layer3", "layer4"};
}

BackboneFactory torchvision_resnet_factory(const std::string& arch) {
  return [arch](const ConfigNode& n, const DatasetSchema& schema) -> Backbone {
    return std::make_shared<TorchvisionResNetImpl>(TorchvisionResNetOptions::from_config(arch, n, schema));
  };
}

}  // namespace mtl
