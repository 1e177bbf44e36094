// transformer backbone: a Transformer encoder over token ids, pre-LayerNorm by default.
//   x = embedding(ids) + position(0..L-1)                   (learned or sinusoidal positions)
//   per block:  x = x + dropout(attention(norm1(x)))        (multi-head self-attention; padded keys masked)
//               x = x + dropout(W2 act(W1 norm2(x)))        (act: gelu, or relu)
//   (norm_first: false, post-LN as torch.nn.TransformerEncoderLayer's default: x = norm1(x + dropout(attention(x)));
//    x = norm2(x + dropout(W2 act(W1 x))))
//   tokens = final_norm(x), zeros at padding                [B, L, dim]  (token-level heads read these;
//                                                            final_norm: false leaves it out)
//   pooled = tokens at position 0 (the <cls> token), or the mean / max over real tokens    [B, dim]
// Attention is written out (one fused QKV projection, batched matmuls over B x heads, the padding mask
// folded into the score matmul as an additive bias): LibTorch 1.13's TransformerEncoderLayer has no
// pre-LN variant, and the extra copies of its generic path cost time on CPU. Columns that are padding in every
// row (a shard of short rows) are dropped before the blocks and restored as zeros. Every dropout draws from
// the calling worker's random stream (mtl/core/random.h).
//   auto trunk = std::make_shared<mtl::TransformerImpl>(mtl::TransformerOptions("text", 30000).dim(64).heads(4));
//   YAML: model: {backbone: {type: transformer, input: text, dim: 128, heads: 4, layers: 2, ffn_dim: 512,
//                            dropout: 0.1, positions: learned, max_length: 512, pooling: first,
//                            norm_first: true, activation: gelu, final_norm: true}}
//   Parameters: embedding.weight, position.weight (learned), blocks.<i>.{norm1, qkv, proj, norm2, ffn1,
//               ffn2}.{weight, bias}, final_norm.{weight, bias}
#pragma once

#include <torch/arg.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include "backbones/backbone.h"
#include "backbones/text_common.h"

namespace mtl {

struct TransformerOptions {
  TransformerOptions(std::string input, int64_t vocab_size) : input_(std::move(input)), vocab_size_(vocab_size) {}
  TORCH_ARG(std::string, input);                            // a kTokens input
  TORCH_ARG(int64_t, vocab_size);                           // its tokenizer's vocabulary size
  TORCH_ARG(int64_t, dim) = 128;                            // model width (divisible by heads)
  TORCH_ARG(int64_t, heads) = 4;
  TORCH_ARG(int64_t, layers) = 2;
  TORCH_ARG(int64_t, ffn_dim) = 512;                        // hidden width of the feed-forward block (YAML: 4 dim)
  TORCH_ARG(double, dropout) = 0.1;                         // embeddings, attention weights, both residual branches
  TORCH_ARG(std::string, positions) = "learned";            // learned | sinusoidal
  TORCH_ARG(int64_t, max_length) = 512;                     // longest sequence (YAML default: the input's max_length)
  TORCH_ARG(TokenPooling, pooling) = TokenPooling::kFirst;  // first | mean | max
  TORCH_ARG(bool, norm_first) = true;                       // false: post-LN blocks (torch.nn's default)
  TORCH_ARG(std::string, activation) = "gelu";              // gelu | relu (torch.nn's default)
  TORCH_ARG(bool, final_norm) = true;                       // a LayerNorm after the last block

 public:
  /// Reads `input` (select_token_input), `dim`, `heads`, `layers`, `ffn_dim`, `dropout`, `positions`,
  /// `max_length` (at least the input's), `pooling`, `norm_first`, `activation` and `final_norm`.
  static TransformerOptions from_config(const ConfigNode& options, const DatasetSchema& schema);
  /// Throws mtl::Error(key, expected) for the first bad value.
  void validate() const;
};

/// One encoder block (pre-LN, or post-LN with norm_first false); `key_bias` [B * heads, 1, L] is 0 at real keys
/// and -inf at padding.
class TransformerBlockImpl : public torch::nn::Module {
 public:
  TransformerBlockImpl(int64_t dim, int64_t heads, int64_t ffn_dim, double dropout, bool norm_first = true,
                       bool relu = false);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& key_bias);

 private:
  at::Tensor attention(const at::Tensor& x, const at::Tensor& key_bias);
  at::Tensor feed_forward(const at::Tensor& x);
  int64_t dim_, heads_;
  double dropout_;
  bool norm_first_, relu_;
  torch::nn::LayerNorm norm1_{nullptr}, norm2_{nullptr};
  torch::nn::Linear qkv_{nullptr}, proj_{nullptr}, ffn1_{nullptr}, ffn2_{nullptr};
};
TORCH_MODULE(TransformerBlock);

class TransformerImpl : public BackboneImpl {
 public:
  /// Throws mtl::Error "TransformerOptions.<key>: ..." for bad options.
  explicit TransformerImpl(TransformerOptions options);
  at::Tensor forward(const TensorMap& inputs) override { return encode(inputs).pooled; }
  Features encode(const TensorMap& inputs) override;
  bool has_token_features() const override { return true; }
  int64_t output_dim() const override { return options_.dim(); }
  std::vector<std::string> block_names() const override;
  /// Stage 0: embeddings; stage 1 + l: block l; the last: final norm and pooling.
  int64_t num_stages() const override { return (final_norm_ ? 2 : 1) + static_cast<int64_t>(blocks_->size()); }
  at::Tensor stage(int64_t i, const TensorMap& inputs, const at::Tensor& x) override;
  const TransformerOptions& options() const { return options_; }
  /// LibTorch's defaults, then the embeddings' N(0, 0.02) (padding row zero).
  void reset_parameters(at::Generator& gen) override;

 private:
  struct Prepared {
    at::Tensor ids, mask;  // without the columns that are padding in every row
    int64_t full_length = 0;
  };
  Prepared prepare(const TensorMap& inputs) const;
  at::Tensor embed(const at::Tensor& ids);
  at::Tensor key_bias(const at::Tensor& mask, const at::Tensor& like) const;
  at::Tensor normed(const at::Tensor& x) { return final_norm_ ? final_norm_->forward(x) : x; }

  TransformerOptions options_;
  torch::nn::Embedding embedding_{nullptr};
  torch::nn::Embedding position_{nullptr};  // learned positions only
  at::Tensor sinusoid_;                     // [max_length, dim], sinusoidal positions only (not a parameter
                                            // or buffer: it is a constant, and a buffer would make the
                                            // parallel engine keep per-worker replicas)
  torch::nn::ModuleList blocks_;
  torch::nn::LayerNorm final_norm_{nullptr};  // absent with final_norm: false
};

/// Registry factory: from_config + constructor.
Backbone make_transformer_backbone(const ConfigNode& options, const DatasetSchema& schema);

}  // namespace mtl
