#include "mtl/data/mixture.h"

#include <algorithm>
#include <filesystem>

#include <c10/util/Exception.h>

#include "mtl/core/error.h"

namespace mtl {

std::string mixture_label(const std::string& dataset, const std::string& label) { return dataset + "." + label; }

MixtureDataset::MixtureDataset(std::vector<std::string> names, std::vector<std::shared_ptr<Dataset>> parts)
    : names_(std::move(names)), parts_(std::move(parts)) {
  offsets_.push_back(0);
  for (const auto& p : parts_) offsets_.push_back(offsets_.back() + p->size());
}

Batch MixtureDataset::batch(const std::vector<int64_t>& indices) const {
  if (indices.empty()) return Batch{};
  auto it = std::upper_bound(offsets_.begin(), offsets_.end(), indices.front());
  const size_t d = static_cast<size_t>(it - offsets_.begin()) - 1;
  std::vector<int64_t> local;
  local.reserve(indices.size());
  for (int64_t i : indices) {
    TORCH_CHECK(i >= offsets_[d] && i < offsets_[d + 1], "a mixture batch mixes examples of two datasets");
    local.push_back(i - offsets_[d]);
  }
  Batch b = parts_[d]->batch(local);
  TensorMap renamed;
  for (auto& kv : b.targets) renamed[mixture_label(names_[d], kv.first)] = std::move(kv.second);
  b.targets = std::move(renamed);
  return b;
}

std::vector<DatasetPart> MixtureDataset::dataset_parts() const {
  std::vector<DatasetPart> out;
  for (size_t d = 0; d < parts_.size(); ++d) out.push_back({names_[d], offsets_[d], parts_[d]->size()});
  return out;
}

std::vector<int64_t> MixtureDataset::lengths() const {
  std::vector<int64_t> out;
  for (const auto& p : parts_) {
    std::vector<int64_t> l = p->lengths();
    if (l.empty()) l.assign(static_cast<size_t>(p->size()), 0);
    out.insert(out.end(), l.begin(), l.end());
  }
  return out;
}

MixtureSource::MixtureSource(std::vector<std::string> names, std::vector<std::shared_ptr<DatasetSource>> parts)
    : names_(std::move(names)), parts_(std::move(parts)) {}

const DatasetSchema& MixtureSource::part_schema(size_t d) const {
  if (schemas_.size() != parts_.size()) schema();
  return schemas_[d];
}

DatasetSchema MixtureSource::schema() const {
  schemas_.clear();
  DatasetSchema out;
  for (size_t d = 0; d < parts_.size(); ++d) {
    schemas_.push_back(parts_[d]->schema());
    const DatasetSchema& s = schemas_.back();
    for (const auto& in : s.inputs) {
      auto same = std::find_if(out.inputs.begin(), out.inputs.end(), [&](const InputInfo& x) { return x.name == in.name; });
      if (same == out.inputs.end()) {
        out.inputs.push_back(in);
        continue;
      }
      if (same->kind != in.kind || (in.kind == InputKind::kDense && same->shape != in.shape))
        throw Error("datasets." + names_[d],
                    "input '" + in.name + "' has a different kind or shape than in an earlier dataset; datasets "
                    "that share an input name feed the same stem and must agree");
      if (in.kind == InputKind::kTokens) {
        same->vocab_size = std::max(same->vocab_size, in.vocab_size);
        same->shape = {std::max(same->shape.empty() ? 0 : same->shape[0], in.shape.empty() ? 0 : in.shape[0])};
      }
    }
    for (LabelInfo l : s.labels) {
      l.name = mixture_label(names_[d], l.name);
      out.labels.push_back(std::move(l));
    }
  }
  return out;
}

std::shared_ptr<Dataset> MixtureSource::open(Split split) const {
  std::vector<std::shared_ptr<Dataset>> parts;
  for (const auto& p : parts_) parts.push_back(p->open(split));
  return std::make_shared<MixtureDataset>(names_, std::move(parts));
}

bool MixtureSource::needs_tokenizer() const {
  return std::any_of(parts_.begin(), parts_.end(), [](const auto& p) { return p->needs_tokenizer(); });
}

void MixtureSource::for_each_training_text(const std::function<void(const std::string&)>& visit) const {
  for (const auto& p : parts_)
    if (p->needs_tokenizer()) p->for_each_training_text(visit);
}

void MixtureSource::set_tokenizer(std::shared_ptr<const Tokenizer> tokenizer) {
  for (auto& p : parts_)
    if (p->needs_tokenizer()) p->set_tokenizer(tokenizer);
}

void MixtureSource::save_artifacts(const std::string& dir) const {
  for (size_t d = 0; d < parts_.size(); ++d) parts_[d]->save_artifacts((std::filesystem::path(dir) / names_[d]).string());
}

void MixtureSource::load_artifacts(const std::string& dir) {
  for (size_t d = 0; d < parts_.size(); ++d) parts_[d]->load_artifacts((std::filesystem::path(dir) / names_[d]).string());
}

std::vector<std::vector<int64_t>> sequential_batches(const Dataset& data, int64_t batch_size) {
  std::vector<int64_t> bounds{0, data.size()};
  if (auto* mix = dynamic_cast<const MixtureDataset*>(&data)) {
    bounds.clear();
    for (size_t d = 0; d <= mix->parts(); ++d) bounds.push_back(mix->offset(d));
  }
  std::vector<std::vector<int64_t>> out;
  for (size_t k = 0; k + 1 < bounds.size(); ++k)
    for (int64_t i = bounds[k]; i < bounds[k + 1]; i += batch_size) {
      std::vector<int64_t> b;
      for (int64_t j = i; j < std::min(bounds[k + 1], i + batch_size); ++j) b.push_back(j);
      out.push_back(std::move(b));
    }
  return out;
}

}  // namespace mtl
