// Batch: what flows from a dataset through the loader into the engine. Inputs and targets are keyed by
// name ("image", "features", a label field such as "left"); an ordered map keeps iteration deterministic.
// A task whose label is absent from a batch contributes no loss for that batch.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace mtl {

using TensorMap = std::map<std::string, at::Tensor>;

struct Batch {
  TensorMap inputs;
  TensorMap targets;
  int64_t size = 0;

  /// Rows [begin, end) of every tensor (views, no copy): one worker's shard.
  Batch slice(int64_t begin, int64_t end) const;
};

/// What kind of values a label field holds; decides which heads, losses and metrics fit it.
enum class LabelKind {
  kClass,       // int64 class index per example, [B]; `size` = number of classes
  kMultiLabel,  // float 0/1 per label, [B, size]
  kReal,        // float values, [B] when size == 1 else [B, size]
};

const char* to_string(LabelKind kind);

struct LabelInfo {
  std::string name;
  LabelKind kind = LabelKind::kClass;
  int64_t size = 0;                   // classes, labels, or output dimensions
  std::vector<std::string> classes;   // optional class names (for predictions), size == `size` if set
};

struct InputInfo {
  std::string name;                  // "image", "features", ...
  std::vector<int64_t> shape;        // per example, e.g. {1, 36, 36}
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
