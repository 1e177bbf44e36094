#include "backbones/transformer.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "mtl/config/config_node.h"
#include "mtl/config/option_check.h"
#include "mtl/core/random.h"

namespace mtl {

TransformerBlockImpl::TransformerBlockImpl(int64_t dim, int64_t heads, int64_t ffn_dim, double dropout,
                                           bool norm_first, bool relu)
    : dim_(dim), heads_(heads), dropout_(dropout), norm_first_(norm_first), relu_(relu) {
  norm1_ = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
  qkv_ = register_module("qkv", torch::nn::Linear(dim, 3 * dim));
  proj_ = register_module("proj", torch::nn::Linear(dim, dim));
  norm2_ = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
  ffn1_ = register_module("ffn1", torch::nn::Linear(dim, ffn_dim));
  ffn2_ = register_module("ffn2", torch::nn::Linear(ffn_dim, dim));
}

at::Tensor TransformerBlockImpl::attention(const at::Tensor& x, const at::Tensor& key_bias) {
  const int64_t B = x.size(0), L = x.size(1), H = heads_, dh = dim_ / heads_;
  // [B, L, 3D] -> [3, B, H, L, dh] in one copy; q, k, v are then contiguous [B*H, L, dh] views.
  at::Tensor qkv = qkv_->forward(x).view({B, L, 3, H, dh}).permute({2, 0, 3, 1, 4}).contiguous();
  at::Tensor q = qkv.select(0, 0).view({B * H, L, dh});
  at::Tensor k = qkv.select(0, 1).view({B * H, L, dh});
  at::Tensor v = qkv.select(0, 2).view({B * H, L, dh});
  // scores = key_bias + q k^T / sqrt(dh): one BLAS call adds the mask.
  at::Tensor scores = at::baddbmm(key_bias, q, k.transpose(1, 2), 1.0, 1.0 / std::sqrt(double(dh)));
  at::Tensor probs = mtl::dropout(at::softmax(scores, -1), dropout_, is_training());
  at::Tensor ctx = at::bmm(probs, v).view({B, H, L, dh}).transpose(1, 2).reshape({B, L, dim_});
  return mtl::dropout(proj_->forward(ctx), dropout_, is_training());
}

at::Tensor TransformerBlockImpl::feed_forward(const at::Tensor& x) {
  at::Tensor h = ffn1_->forward(x);
  return mtl::dropout(ffn2_->forward(relu_ ? at::relu(h) : at::gelu(h)), dropout_, is_training());
}

at::Tensor TransformerBlockImpl::forward(const at::Tensor& x, const at::Tensor& key_bias) {
  if (norm_first_) {
    at::Tensor h = x + attention(norm1_->forward(x), key_bias);
    return h + feed_forward(norm2_->forward(h));
  }
  at::Tensor h = norm1_->forward(x + attention(x, key_bias));
  return norm2_->forward(h + feed_forward(h));
}

void TransformerImpl::reset_parameters(at::Generator& gen) {
  reset_module_parameters(*this, gen);
  torch::NoGradGuard no_grad;
  embedding_->weight.normal_(0.0, 0.02, gen);
  embedding_->weight[kPadTokenId].zero_();
  if (position_) position_->weight.normal_(0.0, 0.02, gen);
}

TransformerOptions TransformerOptions::from_config(const ConfigNode& n, const DatasetSchema& schema) {
  const InputInfo& in = select_token_input(n, schema);
  TransformerOptions o(in.name, in.vocab_size);
  o.dim(n.get<int64_t>("dim", o.dim()));
  o.heads(n.get<int64_t>("heads", o.heads()));
  o.layers(n.get<int64_t>("layers", o.layers()));
  o.ffn_dim(n.get<int64_t>("ffn_dim", 4 * o.dim()));
  o.dropout(n.get<double>("dropout", o.dropout()));
  o.positions(n.get<std::string>("positions", o.positions()));
  const int64_t input_max = in.shape.empty() ? 0 : in.shape[0];
  o.max_length(n.get<int64_t>("max_length", input_max > 0 ? input_max : o.max_length()));
  validate_config(n, [&] { o.validate(); });
  if (input_max > 0)
    n.check(o.max_length() >= input_max, "max_length",
            "expected at least the input's max_length " + std::to_string(input_max) + ", got " +
                std::to_string(o.max_length()));
  o.pooling(read_pooling(n, "first", {"first", "mean", "max"}));
  o.norm_first(n.get<bool>("norm_first", o.norm_first()));
  o.activation(n.choice("activation", o.activation(), {"gelu", "relu"}));
  o.final_norm(n.get<bool>("final_norm", o.final_norm()));
  return o;
}

void TransformerOptions::validate() const {
  check(dim_ > 0, "dim", "expected a positive number, got " + std::to_string(dim_));
  check(heads_ > 0, "heads", "expected a positive number, got " + std::to_string(heads_));
  check(dim_ % heads_ == 0, "heads",
        "expected a divisor of dim (" + std::to_string(dim_) + "), got " + std::to_string(heads_));
  check(layers_ > 0, "layers", "expected a positive number, got " + std::to_string(layers_));
  check(ffn_dim_ > 0, "ffn_dim", "expected a positive number, got " + std::to_string(ffn_dim_));
  check(dropout_ >= 0 && dropout_ < 1, "dropout", "expected a value in [0, 1)");
  check_choice("positions", positions_, {"learned", "sinusoidal"});
  if (positions_ == "sinusoidal") check(dim_ % 2 == 0, "dim", "sinusoidal positions need an even dim");
  check(max_length_ > 0, "max_length", "expected a positive number, got " + std::to_string(max_length_));
  check_pooling("pooling", pooling_, {TokenPooling::kFirst, TokenPooling::kMean, TokenPooling::kMax});
  check_choice("activation", activation_, {"gelu", "relu"});
  check_token_input(input_, vocab_size_);
}

TransformerImpl::TransformerImpl(TransformerOptions options) : options_(std::move(options)) {
  validate_options("TransformerOptions", [&] { options_.validate(); });
  embedding_ = register_module(
      "embedding", torch::nn::Embedding(torch::nn::EmbeddingOptions(options_.vocab_size(), options_.dim())
                                            .padding_idx(kPadTokenId)));
  {
    // Small embeddings (BERT's 0.02) keep the residual stream's scale sensible; padding stays zero.
    torch::NoGradGuard no_grad;
    embedding_->weight.normal_(0.0, 0.02);
    embedding_->weight[kPadTokenId].zero_();
  }
  if (options_.positions() == "learned") {
    position_ = register_module("position", torch::nn::Embedding(options_.max_length(), options_.dim()));
    torch::NoGradGuard no_grad;
    position_->weight.normal_(0.0, 0.02);
  } else {
    // PE[p, 2i] = sin(p / 10000^(2i/dim)), PE[p, 2i+1] = cos(...)
    at::Tensor pos = at::arange(options_.max_length(), at::kDouble).unsqueeze(1);
    at::Tensor i2 = at::arange(0, options_.dim(), 2, at::kDouble);
    at::Tensor angle = pos * at::exp(i2 * (-std::log(10000.0) / double(options_.dim())));
    sinusoid_ = at::zeros({options_.max_length(), options_.dim()}, at::kDouble);
    sinusoid_.slice(1, 0, options_.dim(), 2).copy_(at::sin(angle));
    sinusoid_.slice(1, 1, options_.dim(), 2).copy_(at::cos(angle.slice(1, 0, options_.dim() / 2)));
    sinusoid_ = sinusoid_.to(at::kFloat);
  }
  for (int64_t l = 0; l < options_.layers(); ++l)
    blocks_->push_back(TransformerBlock(options_.dim(), options_.heads(), options_.ffn_dim(), options_.dropout(),
                                        options_.norm_first(), options_.activation() == "relu"));
  register_module("blocks", blocks_);
  if (options_.final_norm())
    final_norm_ = register_module("final_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({options_.dim()})));
}

std::vector<std::string> TransformerImpl::block_names() const {
  std::vector<std::string> out{position_ ? "embedding,position" : "embedding"};
  for (size_t l = 0; l < blocks_->size(); ++l) out.push_back("blocks." + std::to_string(l));
  if (final_norm_) out.push_back("final_norm");
  return out;
}

TransformerImpl::Prepared TransformerImpl::prepare(const TensorMap& inputs) const {
  Prepared p;
  p.ids = token_ids(inputs, options_.input());
  p.full_length = p.ids.size(1);
  // Columns that are padding in every row (a shard of short rows cut from a batch padded for longer ones)
  // cannot change any result: drop them, and pad the token features back at the end.
  p.mask = padding_mask(p.ids);
  const int64_t used =
      p.ids.size(0) > 0 ? std::max<int64_t>(1, p.mask.sum(1).max().item<int64_t>()) : p.full_length;
  if (used < p.full_length) {
    p.ids = p.ids.narrow(1, 0, used);
    p.mask = p.mask.narrow(1, 0, used);
  }
  TORCH_CHECK(p.ids.size(1) <= options_.max_length(), "transformer: sequences of ", p.ids.size(1),
              " tokens exceed max_length ", options_.max_length(),
              " (raise the backbone's max_length or shorten the input)");
  return p;
}

at::Tensor TransformerImpl::embed(const at::Tensor& ids) {
  const int64_t L = ids.size(1);
  at::Tensor x = embedding_->forward(ids);
  x = x + (position_ ? position_->weight.narrow(0, 0, L) : sinusoid_.narrow(0, 0, L).to(x.options()));
  return mtl::dropout(x, options_.dropout(), is_training());
}

// 0 at real keys, -inf at padded ones, one row per (example, head): [B*H, 1, L]. Every example has a real
// token (<cls>), so no softmax row is all -inf.
at::Tensor TransformerImpl::key_bias(const at::Tensor& mask, const at::Tensor& like) const {
  const int64_t B = mask.size(0), L = mask.size(1), H = options_.heads();
  return at::zeros({B, 1, 1, L}, like.options())
      .masked_fill(mask.logical_not().view({B, 1, 1, L}), -std::numeric_limits<double>::infinity())
      .expand({B, H, 1, L})
      .reshape({B * H, 1, L});
}

Features TransformerImpl::encode(const TensorMap& inputs) {
  const Prepared p = prepare(inputs);
  at::Tensor x = embed(p.ids);
  const at::Tensor bias = key_bias(p.mask, x);
  for (const auto& block : *blocks_) x = block->as<TransformerBlockImpl>()->forward(x, bias);
  Features f;
  f.tokens = normed(x).masked_fill(p.mask.logical_not().unsqueeze(2), 0.0);
  f.pooled = masked_pool(f.tokens, p.mask, options_.pooling());
  const int64_t L = p.ids.size(1);
  if (L < p.full_length) f.tokens = at::constant_pad_nd(f.tokens, {0, 0, 0, p.full_length - L});
  return f;
}

at::Tensor TransformerImpl::stage(int64_t i, const TensorMap& inputs, const at::Tensor& x) {
  const Prepared p = prepare(inputs);
  if (i == 0) return embed(p.ids);
  at::Tensor y = x;
  if (i <= static_cast<int64_t>(blocks_->size())) {
    y = blocks_[static_cast<size_t>(i - 1)]->as<TransformerBlockImpl>()->forward(x, key_bias(p.mask, x));
    if (i + 1 < num_stages()) return y;  // without final_norm the last block's stage also pools
  }
  at::Tensor tokens = normed(y).masked_fill(p.mask.logical_not().unsqueeze(2), 0.0);
  return masked_pool(tokens, p.mask, options_.pooling());
}

Backbone make_transformer_backbone(const ConfigNode& n, const DatasetSchema& schema) {
  return std::make_shared<TransformerImpl>(TransformerOptions::from_config(n, schema));
}

}  // namespace mtl
