#include "backbones/torchvision_vit.h"

#include <cmath>

#include "mtl/config/config_node.h"
#include "mtl/config/option_check.h"
#include "mtl/core/random.h"

namespace mtl {

namespace {

struct ViTPreset {
  const char* name;
  int64_t patch, hidden, layers, heads, mlp;
};
// torchvision.models.vision_transformer's named models.
constexpr ViTPreset kPresets[] = {
    {"vit_b_16", 16, 768, 12, 12, 3072},
    {"vit_b_32", 32, 768, 12, 12, 3072},
    {"vit_l_16", 16, 1024, 24, 16, 4096},
    {"vit_l_32", 32, 1024, 24, 16, 4096},
};

constexpr double kLayerNormEps = 1e-6;  // torchvision's norm_layer: partial(nn.LayerNorm, eps=1e-6)

torch::nn::LayerNorm layer_norm(int64_t dim) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(kLayerNormEps));
}

// torch.nn.init.xavier_uniform_ of a [out, in] matrix, from `gen`.
void xavier_uniform(at::Tensor& w, at::Generator& gen) {
  const double bound = std::sqrt(6.0 / static_cast<double>(w.size(0) + w.size(1)));
  w.uniform_(-bound, bound, gen);
}

// torch.nn.init.trunc_normal_(std) with its default cut-off at +-2 (absolute), by redrawing outliers.
void trunc_normal(at::Tensor& w, double std, at::Generator& gen) {
  w.normal_(0.0, std, gen);
  for (int round = 0; round < 100; ++round) {
    at::Tensor out = w.abs() > 2.0;
    if (!out.any().item<bool>()) return;
    w.masked_scatter_(out, at::empty_like(w).normal_(0.0, std, gen).masked_select(out));
  }
  w.clamp_(-2.0, 2.0);
}

}  // namespace

const std::vector<std::string>& torchvision_vit_types() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v{"vit"};
    for (const auto& p : kPresets) v.emplace_back(p.name);
    return v;
  }();
  return names;
}

ViTBlockImpl::ViTBlockImpl(int64_t dim, int64_t heads, int64_t mlp_dim, double dropout, double attention_dropout)
    : dim_(dim), heads_(heads), dropout_(dropout), attention_dropout_(attention_dropout) {
  ln_1_ = register_module("ln_1", layer_norm(dim));
  attn_ = register_module("self_attention", std::make_shared<torch::nn::Module>("MultiheadAttention"));
  in_proj_weight_ = attn_->register_parameter("in_proj_weight", at::empty({3 * dim, dim}));
  in_proj_bias_ = attn_->register_parameter("in_proj_bias", at::zeros({3 * dim}));
  out_proj_ = attn_->register_module("out_proj", torch::nn::Linear(dim, dim));
  ln_2_ = register_module("ln_2", layer_norm(dim));
  auto mlp = register_module("mlp", std::make_shared<torch::nn::Module>("MLPBlock"));
  mlp0_ = mlp->register_module("0", torch::nn::Linear(dim, mlp_dim));
  mlp3_ = mlp->register_module("3", torch::nn::Linear(mlp_dim, dim));
}

at::Tensor ViTBlockImpl::attention(const at::Tensor& x) {
  const int64_t B = x.size(0), L = x.size(1), H = heads_, dh = dim_ / heads_;
  const bool train = is_training();
  // [B, L, 3D] -> [3, B, H, L, dh]; q, k, v as nn.MultiheadAttention splits in_proj_weight (q rows first).
  at::Tensor qkv = at::linear(x, in_proj_weight_, in_proj_bias_).view({B, L, 3, H, dh}).permute({2, 0, 3, 1, 4});
  qkv = qkv.contiguous();
  at::Tensor q = qkv.select(0, 0).view({B * H, L, dh});
  at::Tensor k = qkv.select(0, 1).view({B * H, L, dh});
  at::Tensor v = qkv.select(0, 2).view({B * H, L, dh});
  at::Tensor probs = at::softmax(at::bmm(q, k.transpose(1, 2)) * (1.0 / std::sqrt(double(dh))), -1);
  probs = mtl::dropout(probs, attention_dropout_, train);
  at::Tensor ctx = at::bmm(probs, v).view({B, H, L, dh}).transpose(1, 2).reshape({B, L, dim_});
  return out_proj_->forward(ctx);
}

at::Tensor ViTBlockImpl::forward(const at::Tensor& x) {
  const bool train = is_training();
  at::Tensor h = x + mtl::dropout(attention(ln_1_->forward(x)), dropout_, train);
  at::Tensor y = mtl::dropout(at::gelu(mlp0_->forward(ln_2_->forward(h))), dropout_, train);
  return h + mtl::dropout(mlp3_->forward(y), dropout_, train);
}

void ViTBlockImpl::reset(at::Generator& gen) {
  torch::NoGradGuard no_grad;
  for (auto* ln : {&ln_1_, &ln_2_}) {
    (*ln)->weight.fill_(1.0);
    (*ln)->bias.zero_();
  }
  xavier_uniform(in_proj_weight_, gen);  // nn.MultiheadAttention._reset_parameters
  in_proj_bias_.zero_();
  const double bound = 1.0 / std::sqrt(static_cast<double>(dim_));  // out_proj: nn.Linear's kaiming-uniform
  out_proj_->weight.uniform_(-bound, bound, gen);
  out_proj_->bias.zero_();
  for (auto* l : {&mlp0_, &mlp3_}) {  // MLPBlock: xavier-uniform weights, N(0, 1e-6) biases
    xavier_uniform((*l)->weight, gen);
    (*l)->bias.normal_(0.0, 1e-6, gen);
  }
}

TorchvisionViTOptions TorchvisionViTOptions::from_config(const std::string& preset, const ConfigNode& n,
                                                         const DatasetSchema& schema) {
  const InputInfo& in = select_input(n, schema);
  n.check(in.shape.size() == 3, "input",
          preset + " needs an image input [C, H, W]; input '" + in.name + "' has " +
              std::to_string(in.shape.size()) + " dimensions");
  TorchvisionViTOptions o(in.name, in.shape);
  for (const auto& p : kPresets)
    if (preset == p.name) o.patch_size(p.patch).hidden_dim(p.hidden).layers(p.layers).heads(p.heads).mlp_dim(p.mlp);
  o.patch_size(n.get<int64_t>("patch_size", o.patch_size()));
  o.hidden_dim(n.get<int64_t>("hidden_dim", o.hidden_dim()));
  o.layers(n.get<int64_t>("layers", o.layers()));
  o.heads(n.get<int64_t>("heads", o.heads()));
  o.mlp_dim(n.get<int64_t>("mlp_dim", o.mlp_dim()));
  o.dropout(n.get<double>("dropout", o.dropout()));
  o.attention_dropout(n.get<double>("attention_dropout", o.attention_dropout()));
  validate_config(n, [&] { o.validate(); });
  return o;
}

void TorchvisionViTOptions::validate() const {
  check(!input_.empty(), "input", "expected the name of the input to read");
  check(image_shape_.size() == 3 && image_shape_[0] > 0, "input", "expected an image input [C, H, W]");
  check(patch_size_ > 0, "patch_size", "expected a positive number, got " + std::to_string(patch_size_));
  for (size_t d = 1; d < 3; ++d)
    check(image_shape_[d] % patch_size_ == 0 && image_shape_[d] >= patch_size_, "patch_size",
          "expected a divisor of the image's height and width (" + std::to_string(image_shape_[1]) + " x " +
              std::to_string(image_shape_[2]) + "), got " + std::to_string(patch_size_));
  check(hidden_dim_ > 0, "hidden_dim", "expected a positive number, got " + std::to_string(hidden_dim_));
  check(heads_ > 0 && hidden_dim_ % heads_ == 0, "heads",
        "expected a positive divisor of hidden_dim (" + std::to_string(hidden_dim_) + "), got " +
            std::to_string(heads_));
  check(layers_ > 0, "layers", "expected a positive number, got " + std::to_string(layers_));
  check(mlp_dim_ > 0, "mlp_dim", "expected a positive number, got " + std::to_string(mlp_dim_));
  check(dropout_ >= 0 && dropout_ < 1, "dropout", "expected a value in [0, 1)");
  check(attention_dropout_ >= 0 && attention_dropout_ < 1, "attention_dropout", "expected a value in [0, 1)");
}

TorchvisionViTImpl::TorchvisionViTImpl(TorchvisionViTOptions options) : options_(std::move(options)) {
  validate_options("TorchvisionViTOptions", [&] { options_.validate(); });
  const auto& o = options_;
  const int64_t D = o.hidden_dim(), p = o.patch_size();
  const int64_t patches = (o.image_shape()[1] / p) * (o.image_shape()[2] / p);
  conv_proj_ = register_module(
      "conv_proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(o.image_shape()[0], D, p).stride(p)));
  class_token_ = register_parameter("class_token", at::zeros({1, 1, D}));
  auto encoder = register_module("encoder", std::make_shared<torch::nn::Module>("Encoder"));
  pos_embedding_ = encoder->register_parameter("pos_embedding", at::zeros({1, patches + 1, D}));
  auto layers = encoder->register_module("layers", std::make_shared<torch::nn::Module>("Sequential"));
  for (int64_t l = 0; l < o.layers(); ++l)
    blocks_.push_back(layers->register_module("encoder_layer_" + std::to_string(l),
                                              ViTBlock(D, o.heads(), o.mlp_dim(), o.dropout(), o.attention_dropout())));
  ln_ = encoder->register_module("ln", layer_norm(D));
}

void TorchvisionViTImpl::reset_parameters(at::Generator& gen) {
  torch::NoGradGuard no_grad;
  const auto& w = conv_proj_->weight;
  const double fan_in = static_cast<double>(w.size(1) * w.size(2) * w.size(3));
  trunc_normal(conv_proj_->weight, std::sqrt(1.0 / fan_in), gen);
  conv_proj_->bias.zero_();
  class_token_.zero_();
  pos_embedding_.normal_(0.0, 0.02, gen);
  for (auto& b : blocks_) b->reset(gen);
  ln_->weight.fill_(1.0);
  ln_->bias.zero_();
}

at::Tensor TorchvisionViTImpl::forward(const TensorMap& inputs) {
  at::Tensor x;
  for (int64_t i = 0; i < num_stages(); ++i) x = stage(i, inputs, x);
  return x;
}

at::Tensor TorchvisionViTImpl::stage(int64_t i, const TensorMap& inputs, const at::Tensor& in) {
  at::Tensor x;
  if (i == 0) {
    at::Tensor image = inputs.at(options_.input());
    const int64_t B = image.size(0);
    x = conv_proj_->forward(image).flatten(2).transpose(1, 2);  // [B, N, D], patches in row-major order
    x = at::cat({class_token_.expand({B, 1, options_.hidden_dim()}), x}, 1) + pos_embedding_;
    x = mtl::dropout(x, options_.dropout(), is_training());
  } else {
    x = blocks_[static_cast<size_t>(i - 1)]->forward(in);
  }
  return i + 1 == num_stages() ? ln_->forward(x).select(1, 0) : x;
}

std::vector<std::string> TorchvisionViTImpl::block_names() const {
  std::vector<std::string> out{"conv_proj,class_token,encoder.pos_embedding"};
  for (int64_t l = 0; l < options_.layers(); ++l) out.push_back("encoder.layers.encoder_layer_" + std::to_string(l));
  out.back() += ",encoder.ln";
  return out;
}

BackboneFactory torchvision_vit_factory(const std::string& type) {
  return [type](const ConfigNode& n, const DatasetSchema& schema) -> Backbone {
    return std::make_shared<TorchvisionViTImpl>(TorchvisionViTOptions::from_config(type, n, schema));
  };
}

}  // namespace mtl
