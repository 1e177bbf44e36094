// text_cnn backbone (Kim, 2014): token embeddings, parallel 1-D convolutions of several widths, ReLU and
// max-over-time pooling per filter, concatenated -> [B, filters * kernel_sizes.size()].
// Only windows that lie inside the example compete in the max (padding never wins); an example shorter
// than a kernel has exactly one window, its tokens followed by zeros, so short texts still get features.
//   model: {backbone: {type: text_cnn, input: text, dim: 128, kernel_sizes: [3, 4, 5], filters: 100,
//                      dropout: 0.0}}
//   Parameters: embedding.weight, convs.<i>.weight [filters, dim, k_i], convs.<i>.bias
#pragma once

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>

#include "backbones/backbone.h"
#include "backbones/text_common.h"

namespace mtl {

struct TextCnnOptions {
  std::string input;
  int64_t vocab_size = 0;
  int64_t dim = 128;                           // embedding width
  std::vector<int64_t> kernel_sizes{3, 4, 5};  // window widths, one convolution each
  int64_t filters = 100;                       // output channels per convolution
  double dropout = 0.0;                        // on the concatenated features
};

class TextCnnImpl : public BackboneImpl {
 public:
  explicit TextCnnImpl(const TextCnnOptions& options);
  at::Tensor forward(const TensorMap& inputs) override;
  int64_t output_dim() const override {
    return options_.filters * static_cast<int64_t>(options_.kernel_sizes.size());
  }

 private:
  TextCnnOptions options_;
  int64_t max_kernel_ = 1;
  torch::nn::Embedding embedding_{nullptr};
  torch::nn::ModuleList convs_;
};

Backbone make_text_cnn_backbone(const ConfigNode& options, const DatasetSchema& schema);

}  // namespace mtl
