// embedding_bag backbone: a bag of words. Token embeddings (padding id 0 embeds to zeros) pooled over each
// example's real tokens (mean, sum or max), then an optional Linear projection + activation.
//   model: {backbone: {type: embedding_bag, input: text, dim: 128, mode: mean, projection: 0, dropout: 0.0}}
//   Parameters: embedding.weight [vocab, dim], projection.weight/bias (projection > 0 only)
#pragma once

#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>

#include "backbones/backbone.h"
#include "backbones/text_common.h"

namespace mtl {

struct EmbeddingBagOptions {
  std::string input;                          // a kTokens input
  int64_t vocab_size = 0;                     // from the input
  int64_t dim = 128;                          // embedding width
  TokenPooling mode = TokenPooling::kMean;    // mode: mean | sum | max
  int64_t projection = 0;                     // output width of a Linear after pooling; 0 = none
  std::string activation = "tanh";            // after the projection: relu | gelu | tanh
  double dropout = 0.0;                       // on the pooled vector, before the projection
};

class EmbeddingBagImpl : public BackboneImpl {
 public:
  explicit EmbeddingBagImpl(const EmbeddingBagOptions& options);
  at::Tensor forward(const TensorMap& inputs) override;
  int64_t output_dim() const override { return options_.projection > 0 ? options_.projection : options_.dim; }

 private:
  EmbeddingBagOptions options_;
  torch::nn::Embedding embedding_{nullptr};
  torch::nn::Linear projection_{nullptr};
};

Backbone make_embedding_bag_backbone(const ConfigNode& options, const DatasetSchema& schema);

}  // namespace mtl
