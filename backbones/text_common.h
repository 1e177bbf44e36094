// Shared pieces of the text backbones (embedding_bag, text_cnn, rnn, transformer): picking the token-id
// input, the padding mask, and pooling over real tokens only, so that extra padding columns never change
// an example's features.
//   const InputInfo& in = select_token_input(options, schema);     // mtl::Error unless ids
//   at::Tensor mask = padding_mask(ids);                           // bool [B, L], true at real tokens
//   at::Tensor pooled = masked_pool(tokens, mask, TokenPooling::kMean);  // [B, D]
//   check_pooling("pooling", o.pooling(), {TokenPooling::kFirst, TokenPooling::kMean});  // in XOptions::validate()
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "backbones/backbone.h"

namespace mtl {

/// select_input(), then checks that the input holds token ids (InputKind::kTokens, vocab_size > 0).
const InputInfo& select_token_input(const ConfigNode& options, const DatasetSchema& schema);

/// For the text backbones' validate(): throws mtl::Error(key, expected) unless `input` names an input and
/// `vocab_size` counts more than the reserved ids.
void check_token_input(const std::string& input, int64_t vocab_size);

/// Token ids [B, L] of `name` from `inputs` (TORCH_CHECK on dtype and rank).
at::Tensor token_ids(const TensorMap& inputs, const std::string& name);

/// true at real tokens: ids != kPadTokenId, bool [B, L].
at::Tensor padding_mask(const at::Tensor& ids);

enum class TokenPooling { kFirst, kMean, kSum, kMax, kLast };
/// Parses a pooling name ("first", "mean", "sum", "max", "last") restricted to `allowed`.
TokenPooling read_pooling(const ConfigNode& options, const std::string& fallback,
                          const std::vector<std::string>& allowed);

/// For validate(): throws mtl::Error(key, ...) unless `pooling` is one of `allowed`.
void check_pooling(const std::string& key, TokenPooling pooling, const std::vector<TokenPooling>& allowed);

/// Pools x [B, L, D] over the positions where mask [B, L] is true: mean, sum or max (padding never wins a
/// max; a row without any real token pools to zeros), or kFirst = position 0 (the <cls> token).
/// kLast is not a masked pool (the rnn reads its final hidden states) and is rejected here.
at::Tensor masked_pool(const at::Tensor& x, const at::Tensor& mask, TokenPooling pooling);

}  // namespace mtl
