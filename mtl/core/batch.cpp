#include "mtl/core/batch.h"

#include <ATen/ATen.h>

namespace mtl {

Batch Batch::slice(int64_t begin, int64_t end) const {
  Batch out;
  out.size = end - begin;
  for (const auto& kv : inputs) out.inputs[kv.first] = kv.second.slice(0, begin, end);
  for (const auto& kv : targets) out.targets[kv.first] = kv.second.slice(0, begin, end);
  return out;
}

const char* to_string(LabelKind kind) {
  switch (kind) {
    case LabelKind::kClass: return "class";
    case LabelKind::kMultiLabel: return "multilabel";
    case LabelKind::kReal: return "real";
    case LabelKind::kTokenClass: return "token class";
    case LabelKind::kPixelClass: return "pixel class";
    case LabelKind::kPixelReal: return "pixel value";
  }
  return "?";
}

const LabelInfo* DatasetSchema::label(const std::string& name) const {
  for (const auto& l : labels)
    if (l.name == name) return &l;
  return nullptr;
}

const InputInfo* DatasetSchema::input(const std::string& name) const {
  for (const auto& i : inputs)
    if (i.name == name) return &i;
  return nullptr;
}

std::vector<std::string> DatasetSchema::label_names() const {
  std::vector<std::string> out;
  for (const auto& l : labels) out.push_back(l.name);
  return out;
}

}  // namespace mtl
