// text_cnn backbone (Kim, 2014): token embeddings, parallel 1-D convolutions of several widths, ReLU and
// max-over-time pooling per filter, concatenated -> [B, filters * kernel_sizes.size()].
// Only windows that lie inside the example compete in the max (padding never wins); an example shorter
// than a kernel has exactly one window, its tokens followed by zeros, so short texts still get features.
//   auto trunk = std::make_shared<mtl::TextCnnImpl>(mtl::TextCnnOptions("text", 30000).kernel_sizes({3, 5}));
//   YAML: model: {backbone: {type: text_cnn, input: text, dim: 128, kernel_sizes: [3, 4, 5], filters: 100,
//                            dropout: 0.0}}
//   Parameters: embedding.weight, convs.<i>.weight [filters, dim, k_i], convs.<i>.bias
#pragma once

#include <torch/arg.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>

#include "backbones/backbone.h"
#include "backbones/text_common.h"

namespace mtl {

struct TextCnnOptions {
  TextCnnOptions(std::string input, int64_t vocab_size) : input_(std::move(input)), vocab_size_(vocab_size) {}
  TORCH_ARG(std::string, input);                             // a kTokens input
  TORCH_ARG(int64_t, vocab_size);                            // its tokenizer's vocabulary size
  TORCH_ARG(int64_t, dim) = 128;                             // embedding width
  TORCH_ARG(std::vector<int64_t>, kernel_sizes) = {3, 4, 5}; // window widths, one convolution each
  TORCH_ARG(int64_t, filters) = 100;                         // output channels per convolution
  TORCH_ARG(double, dropout) = 0.0;                          // on the concatenated features

 public:
  /// Reads `input` (select_token_input), `dim`, `kernel_sizes`, `filters` and `dropout`.
  static TextCnnOptions from_config(const ConfigNode& options, const DatasetSchema& schema);
  /// Throws mtl::Error(key, expected) for the first bad value.
  void validate() const;
};

class TextCnnImpl : public BackboneImpl {
 public:
  /// Throws mtl::Error "TextCnnOptions.<key>: ..." for bad options.
  explicit TextCnnImpl(TextCnnOptions options);
  at::Tensor forward(const TensorMap& inputs) override;
  int64_t output_dim() const override {
    return options_.filters() * static_cast<int64_t>(options_.kernel_sizes().size());
  }
  const TextCnnOptions& options() const { return options_; }

 private:
  TextCnnOptions options_;
  int64_t max_kernel_ = 1;
  torch::nn::Embedding embedding_{nullptr};
  torch::nn::ModuleList convs_;
};

/// Registry factory: from_config + constructor.
Backbone make_text_cnn_backbone(const ConfigNode& options, const DatasetSchema& schema);

}  // namespace mtl
