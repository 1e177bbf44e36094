#include "backbones/rnn.h"

#include <torch/nn/modules/rnn.h>
#include <torch/nn/utils/rnn.h>

#include "mtl/config/config_node.h"
#include "mtl/config/option_check.h"
#include "mtl/core/random.h"

namespace mtl {

namespace rnn_utils = torch::nn::utils::rnn;

RnnOptions RnnOptions::from_config(const ConfigNode& n, const DatasetSchema& schema) {
  const InputInfo& in = select_token_input(n, schema);
  RnnOptions o(in.name, in.vocab_size);
  o.cell(n.get<std::string>("cell", o.cell()));
  o.bidirectional(n.get<bool>("bidirectional", o.bidirectional()));
  o.layers(n.get<int64_t>("layers", o.layers()));
  o.dim(n.get<int64_t>("dim", o.dim()));
  o.hidden(n.get<int64_t>("hidden", o.hidden()));
  o.dropout(n.get<double>("dropout", o.dropout()));
  validate_config(n, [&] { o.validate(); });
  o.pooling(read_pooling(n, "last", {"last", "mean", "max"}));
  return o;
}

void RnnOptions::validate() const {
  check_choice("cell", cell_, {"lstm", "gru"});
  check(layers_ > 0, "layers", "expected a positive number, got " + std::to_string(layers_));
  check(dim_ > 0, "dim", "expected a positive number, got " + std::to_string(dim_));
  check(hidden_ > 0, "hidden", "expected a positive number, got " + std::to_string(hidden_));
  check(dropout_ >= 0 && dropout_ < 1, "dropout", "expected a value in [0, 1)");
  check_pooling("pooling", pooling_, {TokenPooling::kLast, TokenPooling::kMean, TokenPooling::kMax});
  check_token_input(input_, vocab_size_);
}

RnnImpl::RnnImpl(RnnOptions options) : options_(std::move(options)) {
  validate_options("RnnOptions", [&] { options_.validate(); });
  embedding_ = register_module(
      "embedding", torch::nn::Embedding(torch::nn::EmbeddingOptions(options_.vocab_size(), options_.dim())
                                            .padding_idx(kPadTokenId)));
  const bool both = options_.bidirectional();
  int64_t width = options_.dim();
  for (int64_t l = 0; l < options_.layers(); ++l) {
    if (options_.cell() == "lstm")
      layers_->push_back(torch::nn::LSTM(torch::nn::LSTMOptions(width, options_.hidden()).batch_first(true).bidirectional(both)));
    else
      layers_->push_back(torch::nn::GRU(torch::nn::GRUOptions(width, options_.hidden()).batch_first(true).bidirectional(both)));
    width = output_dim();
  }
  register_module("layers", layers_);
}

Features RnnImpl::encode(const TensorMap& inputs) {
  at::Tensor ids = token_ids(inputs, options_.input());
  const int64_t L = ids.size(1);
  at::Tensor mask = padding_mask(ids);
  // Lengths on the CPU (pack_padded_sequence wants them there); at least 1 so that an all-padding row
  // (never produced by a tokenizer) cannot fail the packing.
  at::Tensor lengths = mask.sum(1).clamp_min(1).to(at::kCPU);
  rnn_utils::PackedSequence packed =
      rnn_utils::pack_padded_sequence(embedding_->forward(ids), lengths, /*batch_first=*/true,
                                      /*enforce_sorted=*/false);
  at::Tensor h_n;  // [directions, B, H] of the top layer, in the batch's own row order
  for (const auto& layer : *layers_) {
    if (options_.dropout() > 0 && is_training())
      packed = rnn_utils::PackedSequence(mtl::dropout(packed.data(), options_.dropout(), true), packed.batch_sizes(),
                                         packed.sorted_indices(), packed.unsorted_indices());
    if (auto* lstm = layer->as<torch::nn::LSTMImpl>()) {
      auto out = lstm->forward_with_packed_input(packed);
      packed = std::get<0>(out);
      h_n = std::get<0>(std::get<1>(out));
    } else {
      auto out = layer->as<torch::nn::GRUImpl>()->forward_with_packed_input(packed);
      packed = std::get<0>(out);
      h_n = std::get<1>(out);
    }
  }
  Features f;
  f.tokens = std::get<0>(rnn_utils::pad_packed_sequence(packed, /*batch_first=*/true, 0.0, L));
  if (options_.pooling() == TokenPooling::kLast)
    f.pooled = options_.bidirectional() ? at::cat({h_n[0], h_n[1]}, 1) : h_n[0];
  else
    f.pooled = masked_pool(f.tokens, mask, options_.pooling());
  return f;
}

std::vector<std::string> RnnImpl::block_names() const {
  std::vector<std::string> out{"embedding"};
  for (size_t i = 0; i < layers_->size(); ++i) out.push_back("layers." + std::to_string(i));
  return out;
}

Backbone make_rnn_backbone(const ConfigNode& n, const DatasetSchema& schema) {
  return std::make_shared<RnnImpl>(RnnOptions::from_config(n, schema));
}

}  // namespace mtl
