// torchvision's VisionTransformer (vit_b_16 and its relatives) with torchvision's parameter names (conv_proj,
// class_token, encoder.pos_embedding, encoder.layers.encoder_layer_<i>.{ln_1, self_attention.in_proj_weight, ...,
// ln_2, mlp.0, mlp.3}, encoder.ln), so that a torchvision state_dict loads without rename rules; the classifier
// (heads.head) is left out: the backbone gives the class token's features after the final LayerNorm.
//   patches:  x = conv_proj(image) -> [B, N, D];  x = [class_token; x] + pos_embedding
//   per layer (pre-LN):  x = x + attention(ln_1(x));  x = x + mlp(ln_2(x))     (mlp: Linear, GELU, Linear)
//   features = encoder.ln(x)[:, 0]
// The image's height and width must be multiples of the patch size; the positional embedding has one row per
// patch plus the class token, so weights load into a model of the image size they were trained at.
//   YAML: model: {backbone: {type: vit, patch_size: 16, hidden_dim: 768, layers: 12, heads: 12, mlp_dim: 3072}}
//         model: {backbone: {type: vit_b_16}}   # the same sizes by name (also vit_b_32, vit_l_16, vit_l_32)
#pragma once

#include <torch/arg.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include "backbones/backbone.h"

namespace mtl {

struct TorchvisionViTOptions {
  TorchvisionViTOptions(std::string input, std::vector<int64_t> image_shape)
      : input_(std::move(input)), image_shape_(std::move(image_shape)) {}
  TORCH_ARG(std::string, input);                 // an image input [C, H, W]
  TORCH_ARG(std::vector<int64_t>, image_shape);  // its [C, H, W]
  TORCH_ARG(int64_t, patch_size) = 16;
  TORCH_ARG(int64_t, hidden_dim) = 768;
  TORCH_ARG(int64_t, layers) = 12;
  TORCH_ARG(int64_t, heads) = 12;
  TORCH_ARG(int64_t, mlp_dim) = 3072;
  TORCH_ARG(double, dropout) = 0.0;            // after the positional embedding, attention and each MLP Linear
  TORCH_ARG(double, attention_dropout) = 0.0;  // on the attention weights

 public:
  /// Reads `input` (select_input) and the sizes; `preset` (vit_b_16, ...) gives the defaults of the sizes.
  static TorchvisionViTOptions from_config(const std::string& preset, const ConfigNode& options,
                                           const DatasetSchema& schema);
  /// Throws mtl::Error(key, expected) for the first bad value.
  void validate() const;
};

/// The named presets (vit_b_16, vit_b_32, vit_l_16, vit_l_32) and the generic "vit".
const std::vector<std::string>& torchvision_vit_types();

/// One encoder block under torchvision's names: ln_1, self_attention (in_proj_weight [3D, D], in_proj_bias,
/// out_proj), ln_2, mlp.0 and mlp.3 (the Linear layers of torchvision's MLPBlock).
class ViTBlockImpl : public torch::nn::Module {
 public:
  ViTBlockImpl(int64_t dim, int64_t heads, int64_t mlp_dim, double dropout, double attention_dropout);
  at::Tensor forward(const at::Tensor& x);
  /// torchvision's initialisation (xavier-uniform projections, zero or N(0, 1e-6) biases, LayerNorm 1 / 0).
  void reset(at::Generator& gen);

 private:
  at::Tensor attention(const at::Tensor& x);
  int64_t dim_, heads_;
  double dropout_, attention_dropout_;
  torch::nn::LayerNorm ln_1_{nullptr}, ln_2_{nullptr};
  std::shared_ptr<torch::nn::Module> attn_;  // holds in_proj_weight, in_proj_bias and out_proj
  at::Tensor in_proj_weight_, in_proj_bias_;
  torch::nn::Linear out_proj_{nullptr}, mlp0_{nullptr}, mlp3_{nullptr};
};
TORCH_MODULE(ViTBlock);

class TorchvisionViTImpl : public BackboneImpl {
 public:
  /// Throws mtl::Error "TorchvisionViTOptions.<key>: ..." for bad options.
  explicit TorchvisionViTImpl(TorchvisionViTOptions options);
  at::Tensor forward(const TensorMap& inputs) override;
  int64_t output_dim() const override { return options_.hidden_dim(); }
  std::vector<std::string> block_names() const override;
  /// Stage 0: patches, class token and positions; stage 1 + l: layer l; the last also applies encoder.ln and
  /// takes the class token.
  int64_t num_stages() const override { return 1 + options_.layers(); }
  at::Tensor stage(int64_t i, const TensorMap& inputs, const at::Tensor& x) override;
  /// torchvision's initialisation: conv_proj truncated-normal (std sqrt(1 / fan_in)), class token 0, positions
  /// N(0, 0.02), the blocks' own (ViTBlockImpl::reset).
  void reset_parameters(at::Generator& gen) override;
  const TorchvisionViTOptions& options() const { return options_; }

 private:
  TorchvisionViTOptions options_;
  torch::nn::Conv2d conv_proj_{nullptr};
  at::Tensor class_token_, pos_embedding_;
  std::vector<ViTBlock> blocks_;
  torch::nn::LayerNorm ln_{nullptr};
};

/// Registry factory for a preset name or "vit".
BackboneFactory torchvision_vit_factory(const std::string& type);

}  // namespace mtl
