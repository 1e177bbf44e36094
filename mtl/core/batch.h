// Batch: what flows from a dataset through the loader into the engine. Inputs and targets are keyed by
// name ("image", "features", a label field such as "left"); an ordered map keeps iteration deterministic.
// A task whose label is absent from a batch contributes no loss for that batch.
// Text inputs are token ids int64 [B, L], padded on the right with kPadTokenId (so a padding mask is
// `ids != kPadTokenId`); token-level targets are int64 [B, L] with kIgnoreIndex at positions without a tag.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace mtl {

using TensorMap = std::map<std::string, at::Tensor>;

/// Token ids every tokenizer reserves (its own pieces start at kFirstPieceId).
constexpr int64_t kPadTokenId = 0;  // padding; never a real token
constexpr int64_t kUnkTokenId = 1;  // a word or piece outside the vocabulary
constexpr int64_t kClsTokenId = 2;  // first token of every text sequence ("first" pooling reads it)
constexpr int64_t kFirstPieceId = 3;
/// Token-level targets at padding (and at sub-word pieces after a word's first) hold this value.
constexpr int64_t kIgnoreIndex = -100;

struct Batch {
  TensorMap inputs;
  TensorMap targets;
  int64_t size = 0;
  /// Rows of the whole batch when this is one process's part of it (distributed training: each rank loads its
  /// rows of the global batch, and losses are means over the whole); 0 when this batch is whole.
  int64_t global_size = 0;
  int64_t whole_size() const { return global_size > 0 ? global_size : size; }

  /// Rows [begin, end) of every tensor (views, no copy): one worker's shard.
  Batch slice(int64_t begin, int64_t end) const;
};

/// What kind of values a label field holds; decides which heads, losses and metrics fit it.
enum class LabelKind {
  kClass,       // int64 class index per example, [B]; `size` = number of classes
  kMultiLabel,  // float 0/1 per label, [B, size]
  kReal,        // float values, [B] when size == 1 else [B, size]
  kTokenClass,  // int64 tag index per token, [B, L] (kIgnoreIndex where there is none); `size` = tags
  kPixelClass,  // int64 class index per pixel, [B, H, W] (LabelInfo::shape = {H, W}); `size` = classes
  kPixelReal,   // float value per pixel, [B, H, W] (LabelInfo::shape = {H, W}); `size` = 1
};

/// Dense prediction labels: one value per pixel of an image-sized map.
inline bool is_pixel_label(LabelKind k) { return k == LabelKind::kPixelClass || k == LabelKind::kPixelReal; }

const char* to_string(LabelKind kind);

struct LabelInfo {
  std::string name;
  LabelKind kind = LabelKind::kClass;
  int64_t size = 0;                   // classes, labels, or output dimensions
  std::vector<std::string> classes;   // optional class names (for predictions), size == `size` if set;
                                      // for kTokenClass the tag names (B-PER, I-PER, O, ...)
  std::vector<int64_t> shape;         // pixel labels: the map's {H, W}; else empty
};

enum class InputKind {
  kDense,   // float tensor [B, shape...]
  kTokens,  // token ids int64 [B, L] (L varies by batch), padded with kPadTokenId
};

struct InputInfo {
  std::string name;                  // "image", "features", "text", ...
  std::vector<int64_t> shape;        // per example, e.g. {1, 36, 36}; kTokens: {max_length}
  InputKind kind = InputKind::kDense;
  int64_t vocab_size = 0;            // kTokens: ids are in [0, vocab_size)
};

/// What a dataset provides, known before its data is loaded (used to build the model first).
struct DatasetSchema {
  std::vector<InputInfo> inputs;
  std::vector<LabelInfo> labels;

  const LabelInfo* label(const std::string& name) const;
  const InputInfo* input(const std::string& name) const;
  std::vector<std::string> label_names() const;
};

}  // namespace mtl
