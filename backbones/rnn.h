// rnn backbone: token embeddings -> stacked LSTM or GRU layers (bidirectional by default) run on packed
// sequences, so padding never enters a recurrence. Per-token features [B, L, hidden * directions] (zeros at
// padding) for token-level heads, and a pooled vector:
//   last  the final hidden states of the top layer, both directions concatenated (the backward direction's
//         final state is the one at the example's first token)
//   mean | max  over the example's real tokens
// Layers are separate modules so that dropout between them draws from the worker's own random stream.
//   model: {backbone: {type: rnn, input: text, cell: lstm, bidirectional: true, layers: 1, dim: 128,
//                      hidden: 128, dropout: 0.0, pooling: last}}
//   Parameters: embedding.weight, layers.<i>.weight_ih_l0, ... (and *_reverse for the backward direction)
#pragma once

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>

#include "backbones/backbone.h"
#include "backbones/text_common.h"

namespace mtl {

struct RnnOptions {
  std::string input;
  int64_t vocab_size = 0;
  std::string cell = "lstm";                  // lstm | gru
  bool bidirectional = true;
  int64_t layers = 1;
  int64_t dim = 128;                          // embedding width
  int64_t hidden = 128;                       // hidden units per direction
  double dropout = 0.0;                       // on the input of every recurrent layer
  TokenPooling pooling = TokenPooling::kLast; // last | mean | max
};

class RnnImpl : public BackboneImpl {
 public:
  explicit RnnImpl(const RnnOptions& options);
  at::Tensor forward(const TensorMap& inputs) override { return encode(inputs).pooled; }
  Features encode(const TensorMap& inputs) override;
  bool has_token_features() const override { return true; }
  int64_t output_dim() const override { return options_.hidden * (options_.bidirectional ? 2 : 1); }
  std::vector<std::string> block_names() const override;

 private:
  RnnOptions options_;
  torch::nn::Embedding embedding_{nullptr};
  torch::nn::ModuleList layers_;
};

Backbone make_rnn_backbone(const ConfigNode& options, const DatasetSchema& schema);

}  // namespace mtl
