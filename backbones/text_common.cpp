#include "backbones/text_common.h"

#include <limits>

#include "mtl/config/config_node.h"
#include "mtl/core/error.h"

namespace mtl {

const InputInfo& select_token_input(const ConfigNode& options, const DatasetSchema& schema) {
  const InputInfo& in = select_input(options, schema);
  if (in.kind != InputKind::kTokens)
    options.fail("input", "a text backbone (" + options.type() + ") reads token ids, but input '" + in.name +
                              "' holds dense features; choose a text input with 'input'");
  if (in.vocab_size <= kFirstPieceId)
    options.fail("input", "input '" + in.name + "' has no vocabulary (vocab_size " + std::to_string(in.vocab_size) +
                              "); expected the size of its tokenizer's vocabulary");
  return in;
}

void check_token_input(const std::string& input, int64_t vocab_size) {
  check(!input.empty(), "input", "expected the name of a token-id input");
  check(vocab_size > kFirstPieceId, "vocab_size",
        "expected the size of the tokenizer's vocabulary (more than the " + std::to_string(kFirstPieceId) +
            " reserved ids), got " + std::to_string(vocab_size));
}

at::Tensor token_ids(const TensorMap& inputs, const std::string& name) {
  auto it = inputs.find(name);
  TORCH_CHECK(it != inputs.end(), "text backbone: the batch has no input '", name, "'");
  const at::Tensor& ids = it->second;
  TORCH_CHECK(ids.dim() == 2 && ids.scalar_type() == at::kLong, "text backbone: expected token ids int64 [B, L] in '",
              name, "', got ", ids.scalar_type(), " ", ids.sizes());
  return ids;
}

at::Tensor padding_mask(const at::Tensor& ids) { return ids.ne(kPadTokenId); }

TokenPooling read_pooling(const ConfigNode& options, const std::string& fallback,
                          const std::vector<std::string>& allowed) {
  const std::string p = options.choice("pooling", fallback, allowed);
  if (p == "first") return TokenPooling::kFirst;
  if (p == "mean") return TokenPooling::kMean;
  if (p == "sum") return TokenPooling::kSum;
  if (p == "max") return TokenPooling::kMax;
  return TokenPooling::kLast;
}

void check_pooling(const std::string& key, TokenPooling pooling, const std::vector<TokenPooling>& allowed) {
  static const char* names[] = {"first", "mean", "sum", "max", "last"};
  std::vector<std::string> listed;
  for (TokenPooling p : allowed) {
    if (p == pooling) return;
    listed.push_back(names[static_cast<int>(p)]);
  }
  throw Error(key, std::string("unknown value '") + names[static_cast<int>(pooling)] +
                             "'; expected one of: " + join(listed));
}

at::Tensor masked_pool(const at::Tensor& x, const at::Tensor& mask, TokenPooling pooling) {
  TORCH_CHECK(x.dim() == 3 && mask.dim() == 2 && x.size(0) == mask.size(0) && x.size(1) == mask.size(1),
              "masked_pool: expected x [B, L, D] and mask [B, L], got ", x.sizes(), " and ", mask.sizes());
  switch (pooling) {
    case TokenPooling::kFirst:
      return x.select(1, 0);
    case TokenPooling::kSum:
    case TokenPooling::kMean: {
      // A masked sum as a batched matrix product [B, 1, L] x [B, L, D]: no [B, L, D] temporary.
      at::Tensor w = mask.to(x.scalar_type()).unsqueeze(1);
      at::Tensor sum = at::bmm(w, x).squeeze(1);
      if (pooling == TokenPooling::kSum) return sum;
      return sum / w.sum(2).clamp_min(1);
    }
    case TokenPooling::kMax: {
      at::Tensor m = mask.unsqueeze(2);
      at::Tensor best = x.masked_fill(m.logical_not(), -std::numeric_limits<double>::infinity()).amax(1);
      // Rows without real tokens (never produced by a tokenizer, which always writes <cls>) pool to 0.
      return best.masked_fill(m.any(1).logical_not(), 0);
    }
    case TokenPooling::kLast:
      break;
  }
  TORCH_CHECK(false, "masked_pool: 'last' pooling is the rnn's own");
}

}  // namespace mtl
