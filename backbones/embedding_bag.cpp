#include "backbones/embedding_bag.h"

#include "heads/mlp_block.h"
#include "mtl/config/config_node.h"
#include "mtl/config/option_check.h"
#include "mtl/core/random.h"

namespace mtl {

EmbeddingBagOptions EmbeddingBagOptions::from_config(const ConfigNode& n, const DatasetSchema& schema) {
  const InputInfo& in = select_token_input(n, schema);
  EmbeddingBagOptions o(in.name, in.vocab_size);
  o.dim(n.get<int64_t>("dim", o.dim()));
  const std::string mode = n.choice("mode", "mean", {"mean", "sum", "max"});
  o.mode(mode == "sum" ? TokenPooling::kSum : mode == "max" ? TokenPooling::kMax : TokenPooling::kMean);
  o.projection(n.get<int64_t>("projection", o.projection()));
  o.activation(n.get<std::string>("activation", o.activation()));
  o.dropout(n.get<double>("dropout", o.dropout()));
  validate_config(n, [&] { o.validate(); });
  return o;
}

void EmbeddingBagOptions::validate() const {
  check(dim_ > 0, "dim", "expected a positive number, got " + std::to_string(dim_));
  check_pooling("mode", mode_, {TokenPooling::kMean, TokenPooling::kSum, TokenPooling::kMax});
  check(projection_ >= 0, "projection", "expected a number >= 0, got " + std::to_string(projection_));
  check_choice("activation", activation_, {"relu", "gelu", "tanh"});
  check(dropout_ >= 0 && dropout_ < 1, "dropout", "expected a value in [0, 1)");
  check_token_input(input_, vocab_size_);
}

EmbeddingBagImpl::EmbeddingBagImpl(EmbeddingBagOptions options) : options_(std::move(options)) {
  validate_options("EmbeddingBagOptions", [&] { options_.validate(); });
  embedding_ = register_module(
      "embedding", torch::nn::Embedding(torch::nn::EmbeddingOptions(options_.vocab_size(), options_.dim())
                                            .padding_idx(kPadTokenId)));
  if (options_.projection() > 0)
    projection_ = register_module("projection", torch::nn::Linear(options_.dim(), options_.projection()));
}

at::Tensor EmbeddingBagImpl::forward(const TensorMap& inputs) {
  at::Tensor ids = token_ids(inputs, options_.input());
  at::Tensor x = masked_pool(embedding_->forward(ids), padding_mask(ids), options_.mode());
  x = mtl::dropout(x, options_.dropout(), is_training());
  if (!projection_) return x;
  return activate(projection_->forward(x), options_.activation());
}

Backbone make_embedding_bag_backbone(const ConfigNode& n, const DatasetSchema& schema) {
  return std::make_shared<EmbeddingBagImpl>(EmbeddingBagOptions::from_config(n, schema));
}

}  // namespace mtl
