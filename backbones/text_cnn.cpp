#include "backbones/text_cnn.h"

#include <torch/nn/modules/conv.h>

#include <algorithm>
#include <limits>

#include "mtl/config/config_node.h"
#include "mtl/core/random.h"

namespace mtl {

TextCnnImpl::TextCnnImpl(const TextCnnOptions& options) : options_(options) {
  embedding_ = register_module(
      "embedding", torch::nn::Embedding(torch::nn::EmbeddingOptions(options_.vocab_size, options_.dim)
                                            .padding_idx(kPadTokenId)));
  for (int64_t k : options_.kernel_sizes) {
    convs_->push_back(torch::nn::Conv1d(torch::nn::Conv1dOptions(options_.dim, options_.filters, k)));
    max_kernel_ = std::max(max_kernel_, k);
  }
  register_module("convs", convs_);
}

at::Tensor TextCnnImpl::forward(const TensorMap& inputs) {
  at::Tensor ids = token_ids(inputs, options_.input);
  const int64_t L = ids.size(1);
  at::Tensor lengths = padding_mask(ids).sum(1, /*keepdim=*/true);  // [B, 1]
  // [B, D, L + max_kernel - 1]: zero columns on the right give every start position a full window (padding
  // ids embed to zeros as well, so a window's value never depends on how far the batch was padded).
  at::Tensor x = embedding_->forward(ids).transpose(1, 2);
  if (max_kernel_ > 1) x = at::constant_pad_nd(x, {0, max_kernel_ - 1});
  at::Tensor start = at::arange(L, ids.options()).unsqueeze(0);  // [1, L]
  std::vector<at::Tensor> pooled;
  for (size_t i = 0; i < convs_->size(); ++i) {
    const int64_t k = options_.kernel_sizes[i];
    at::Tensor y = convs_[i]->as<torch::nn::Conv1dImpl>()->forward(x).narrow(2, 0, L);  // [B, F, L]
    // Windows inside the example, or the first window when the example is shorter than k.
    at::Tensor valid = (start + k <= lengths).logical_or(start == 0);                   // [B, L]
    y = y.masked_fill(valid.logical_not().unsqueeze(1), -std::numeric_limits<double>::infinity());
    pooled.push_back(torch::relu(y.amax(2)));  // relu(max) == max(relu): one ReLU per filter, not per window
  }
  return mtl::dropout(at::cat(pooled, 1), options_.dropout, is_training());
}

Backbone make_text_cnn_backbone(const ConfigNode& n, const DatasetSchema& schema) {
  TextCnnOptions o;
  const InputInfo& in = select_token_input(n, schema);
  o.input = in.name;
  o.vocab_size = in.vocab_size;
  o.dim = positive<int64_t>(n, "dim", o.dim);
  o.kernel_sizes = n.get<std::vector<int64_t>>("kernel_sizes", o.kernel_sizes);
  n.check(!o.kernel_sizes.empty(), "kernel_sizes", "expected a non-empty list of window widths");
  for (int64_t k : o.kernel_sizes) n.check(k > 0, "kernel_sizes", "expected positive window widths");
  o.filters = positive<int64_t>(n, "filters", o.filters);
  o.dropout = n.get<double>("dropout", o.dropout);
  n.check(o.dropout >= 0 && o.dropout < 1, "dropout", "expected a value in [0, 1)");
  return std::make_shared<TextCnnImpl>(o);
}

}  // namespace mtl
