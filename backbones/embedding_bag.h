// embedding_bag backbone: a bag of words. Token embeddings (padding id 0 embeds to zeros) pooled over each
// example's real tokens (mean, sum or max), then an optional Linear projection + activation.
//   auto trunk = std::make_shared<mtl::EmbeddingBagImpl>(mtl::EmbeddingBagOptions("text", 30000).dim(64));
//   YAML: model: {backbone: {type: embedding_bag, input: text, dim: 128, mode: mean, projection: 0, dropout: 0.0}}
//   Parameters: embedding.weight [vocab, dim], projection.weight/bias (projection > 0 only)
#pragma once

#include <torch/arg.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>

#include "backbones/backbone.h"
#include "backbones/text_common.h"

namespace mtl {

struct EmbeddingBagOptions {
  EmbeddingBagOptions(std::string input, int64_t vocab_size) : input_(std::move(input)), vocab_size_(vocab_size) {}
  TORCH_ARG(std::string, input);                        // a kTokens input
  TORCH_ARG(int64_t, vocab_size);                       // its tokenizer's vocabulary size
  TORCH_ARG(int64_t, dim) = 128;                        // embedding width
  TORCH_ARG(TokenPooling, mode) = TokenPooling::kMean;  // mode: mean | sum | max
  TORCH_ARG(int64_t, projection) = 0;                   // output width of a Linear after pooling; 0 = none
  TORCH_ARG(std::string, activation) = "tanh";          // after the projection: relu | gelu | tanh
  TORCH_ARG(double, dropout) = 0.0;                     // on the pooled vector, before the projection

 public:
  /// Reads `input` (select_token_input), `dim`, `mode`, `projection`, `activation` and `dropout`.
  static EmbeddingBagOptions from_config(const ConfigNode& options, const DatasetSchema& schema);
  /// Throws mtl::Error(key, expected) for the first bad value.
  void validate() const;
};

class EmbeddingBagImpl : public BackboneImpl {
 public:
  /// Throws mtl::Error "EmbeddingBagOptions.<key>: ..." for bad options.
  explicit EmbeddingBagImpl(EmbeddingBagOptions options);
  at::Tensor forward(const TensorMap& inputs) override;
  int64_t output_dim() const override { return options_.projection() > 0 ? options_.projection() : options_.dim(); }
  const EmbeddingBagOptions& options() const { return options_; }

 private:
  EmbeddingBagOptions options_;
  torch::nn::Embedding embedding_{nullptr};
  torch::nn::Linear projection_{nullptr};
};

/// Registry factory: from_config + constructor.
Backbone make_embedding_bag_backbone(const ConfigNode& options, const DatasetSchema& schema);

}  // namespace mtl
