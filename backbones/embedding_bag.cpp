#include "backbones/embedding_bag.h"

#include "mtl/config/config_node.h"
#include "mtl/core/random.h"

namespace mtl {

EmbeddingBagImpl::EmbeddingBagImpl(const EmbeddingBagOptions& options) : options_(options) {
  embedding_ = register_module(
      "embedding", torch::nn::Embedding(torch::nn::EmbeddingOptions(options_.vocab_size, options_.dim)
                                            .padding_idx(kPadTokenId)));
  if (options_.projection > 0)
    projection_ = register_module("projection", torch::nn::Linear(options_.dim, options_.projection));
}

at::Tensor EmbeddingBagImpl::forward(const TensorMap& inputs) {
  at::Tensor ids = token_ids(inputs, options_.input);
  at::Tensor x = masked_pool(embedding_->forward(ids), padding_mask(ids), options_.mode);
  x = mtl::dropout(x, options_.dropout, is_training());
  if (!projection_) return x;
  x = projection_->forward(x);
  if (options_.activation == "relu") return torch::relu(x);
  if (options_.activation == "gelu") return torch::gelu(x);
  return torch::tanh(x);
}

Backbone make_embedding_bag_backbone(const ConfigNode& n, const DatasetSchema& schema) {
  EmbeddingBagOptions o;
  const InputInfo& in = select_token_input(n, schema);
  o.input = in.name;
  o.vocab_size = in.vocab_size;
  o.dim = positive<int64_t>(n, "dim", o.dim);
  const std::string mode = n.choice("mode", "mean", {"mean", "sum", "max"});
  o.mode = mode == "sum" ? TokenPooling::kSum : mode == "max" ? TokenPooling::kMax : TokenPooling::kMean;
  o.projection = non_negative<int64_t>(n, "projection", o.projection);
  o.activation = n.choice("activation", o.activation, {"relu", "gelu", "tanh"});
  o.dropout = n.get<double>("dropout", o.dropout);
  n.check(o.dropout >= 0 && o.dropout < 1, "dropout", "expected a value in [0, 1)");
  return std::make_shared<EmbeddingBagImpl>(o);
}

}  // namespace mtl
