// rnn backbone: token embeddings -> stacked LSTM or GRU layers (bidirectional by default) run on packed
// sequences, so padding never enters a recurrence. Per-token features [B, L, hidden * directions] (zeros at
// padding) for token-level heads, and a pooled vector:
//   last  the final hidden states of the top layer, both directions concatenated (the backward direction's
//         final state is the one at the example's first token)
//   mean | max  over the example's real tokens
// Layers are separate modules so that dropout between them draws from the worker's own random stream.
//   auto trunk = std::make_shared<mtl::RnnImpl>(mtl::RnnOptions("text", 30000).cell("gru").hidden(64));
//   YAML: model: {backbone: {type: rnn, input: text, cell: lstm, bidirectional: true, layers: 1, dim: 128,
//                            hidden: 128, dropout: 0.0, pooling: last}}
//   Parameters: embedding.weight, layers.<i>.weight_ih_l0, ... (and *_reverse for the backward direction)
#pragma once

#include <torch/arg.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>

#include "backbones/backbone.h"
#include "backbones/text_common.h"

namespace mtl {

struct RnnOptions {
  RnnOptions(std::string input, int64_t vocab_size) : input_(std::move(input)), vocab_size_(vocab_size) {}
  TORCH_ARG(std::string, input);                           // a kTokens input
  TORCH_ARG(int64_t, vocab_size);                          // its tokenizer's vocabulary size
  TORCH_ARG(std::string, cell) = "lstm";                   // lstm | gru
  TORCH_ARG(bool, bidirectional) = true;
  TORCH_ARG(int64_t, layers) = 1;
  TORCH_ARG(int64_t, dim) = 128;                           // embedding width
  TORCH_ARG(int64_t, hidden) = 128;                        // hidden units per direction
  TORCH_ARG(double, dropout) = 0.0;                        // on the input of every recurrent layer
  TORCH_ARG(TokenPooling, pooling) = TokenPooling::kLast;  // last | mean | max

 public:
  /// Reads `input` (select_token_input), `cell`, `bidirectional`, `layers`, `dim`, `hidden`, `dropout`, `pooling`.
  static RnnOptions from_config(const ConfigNode& options, const DatasetSchema& schema);
  /// Throws mtl::Error(key, expected) for the first bad value.
  void validate() const;
};

class RnnImpl : public BackboneImpl {
 public:
  /// Throws mtl::Error "RnnOptions.<key>: ..." for bad options.
  explicit RnnImpl(RnnOptions options);
  at::Tensor forward(const TensorMap& inputs) override { return encode(inputs).pooled; }
  Features encode(const TensorMap& inputs) override;
  bool has_token_features() const override { return true; }
  int64_t output_dim() const override { return options_.hidden() * (options_.bidirectional() ? 2 : 1); }
  std::vector<std::string> block_names() const override;
  const RnnOptions& options() const { return options_; }

 private:
  RnnOptions options_;
  torch::nn::Embedding embedding_{nullptr};
  torch::nn::ModuleList layers_;
};

/// Registry factory: from_config + constructor.
Backbone make_rnn_backbone(const ConfigNode& options, const DatasetSchema& schema);

}  // namespace mtl
