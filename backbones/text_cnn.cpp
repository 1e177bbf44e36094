#include "backbones/text_cnn.h"

#include <torch/nn/modules/conv.h>

#include <algorithm>
#include <limits>

#include "mtl/config/config_node.h"
#include "mtl/config/option_check.h"
#include "mtl/core/random.h"

namespace mtl {

TextCnnOptions TextCnnOptions::from_config(const ConfigNode& n, const DatasetSchema& schema) {
  const InputInfo& in = select_token_input(n, schema);
  TextCnnOptions o(in.name, in.vocab_size);
  o.dim(n.get<int64_t>("dim", o.dim()));
  o.kernel_sizes(n.get<std::vector<int64_t>>("kernel_sizes", o.kernel_sizes()));
  o.filters(n.get<int64_t>("filters", o.filters()));
  o.dropout(n.get<double>("dropout", o.dropout()));
  validate_config(n, [&] { o.validate(); });
  return o;
}

void TextCnnOptions::validate() const {
  check(dim_ > 0, "dim", "expected a positive number, got " + std::to_string(dim_));
  check(!kernel_sizes_.empty(), "kernel_sizes", "expected a non-empty list of window widths");
  for (int64_t k : kernel_sizes_) check(k > 0, "kernel_sizes", "expected positive window widths");
  check(filters_ > 0, "filters", "expected a positive number, got " + std::to_string(filters_));
  check(dropout_ >= 0 && dropout_ < 1, "dropout", "expected a value in [0, 1)");
  check_token_input(input_, vocab_size_);
}

TextCnnImpl::TextCnnImpl(TextCnnOptions options) : options_(std::move(options)) {
  validate_options("TextCnnOptions", [&] { options_.validate(); });
  embedding_ = register_module(
      "embedding", torch::nn::Embedding(torch::nn::EmbeddingOptions(options_.vocab_size(), options_.dim())
                                            .padding_idx(kPadTokenId)));
  for (int64_t k : options_.kernel_sizes()) {
    convs_->push_back(torch::nn::Conv1d(torch::nn::Conv1dOptions(options_.dim(), options_.filters(), k)));
    max_kernel_ = std::max(max_kernel_, k);
  }
  register_module("convs", convs_);
}

at::Tensor TextCnnImpl::forward(const TensorMap& inputs) {
  at::Tensor ids = token_ids(inputs, options_.input());
  const int64_t L = ids.size(1);
  at::Tensor lengths = padding_mask(ids).sum(1, /*keepdim=*/true);  // [B, 1]
  // [B, D, L + max_kernel - 1]: zero columns on the right give every start position a full window (padding
  // ids embed to zeros as well, so a window's value never depends on how far the batch was padded).
  at::Tensor x = embedding_->forward(ids).transpose(1, 2);
  if (max_kernel_ > 1) x = at::constant_pad_nd(x, {0, max_kernel_ - 1});
  at::Tensor start = at::arange(L, ids.options()).unsqueeze(0);  // [1, L]
  std::vector<at::Tensor> pooled;
  for (size_t i = 0; i < convs_->size(); ++i) {
    const int64_t k = options_.kernel_sizes()[i];
    at::Tensor y = convs_[i]->as<torch::nn::Conv1dImpl>()->forward(x).narrow(2, 0, L);  // [B, F, L]
    // Windows inside the example, or the first window when the example is shorter than k.
    at::Tensor valid = (start + k <= lengths).logical_or(start == 0);                   // [B, L]
    y = y.masked_fill(valid.logical_not().unsqueeze(1), -std::numeric_limits<double>::infinity());
    pooled.push_back(torch::relu(y.amax(2)));  // relu(max) == max(relu): one ReLU per filter, not per window
  }
  return mtl::dropout(at::cat(pooled, 1), options_.dropout(), is_training());
}

Backbone make_text_cnn_backbone(const ConfigNode& n, const DatasetSchema& schema) {
  return std::make_shared<TextCnnImpl>(TextCnnOptions::from_config(n, schema));
}

}  // namespace mtl
