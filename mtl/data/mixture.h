// Mixture: several named datasets behind one DatasetSource, for tasks from different datasets. Examples are
// numbered dataset after dataset; a batch holds examples of one dataset only (the task sampler draws one per
// step) and its targets are renamed "<dataset>.<label>", so two datasets may both have a label called
// `label`. Inputs keep their names: datasets with the same input ("text", "image") feed the same stem.
//   MixtureSource mix({"fashion", "sotu"}, {fashion_source, sotu_source});
//   mix.schema().label("sotu.party");   auto train = mix.open(Split::kTrain);
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "mtl/data/dataset.h"

namespace mtl {

/// The target name of `label` of dataset `dataset` inside a mixture.
std::string mixture_label(const std::string& dataset, const std::string& label);

class MixtureDataset : public Dataset {
 public:
  MixtureDataset(std::vector<std::string> names, std::vector<std::shared_ptr<Dataset>> parts);
  int64_t size() const override { return offsets_.back(); }
  /// All `indices` must lie in one part (a step draws from one dataset).
  Batch batch(const std::vector<int64_t>& indices) const override;
  std::vector<int64_t> lengths() const override;
  std::vector<DatasetPart> dataset_parts() const override;

  size_t parts() const { return parts_.size(); }
  const std::string& name(size_t d) const { return names_[d]; }
  const Dataset& part(size_t d) const { return *parts_[d]; }
  /// Index of the first example of part d (offset(parts()) == size()).
  int64_t offset(size_t d) const { return offsets_[d]; }

 private:
  std::vector<std::string> names_;
  std::vector<std::shared_ptr<Dataset>> parts_;
  std::vector<int64_t> offsets_;
};

class MixtureSource : public DatasetSource {
 public:
  /// Throws mtl::Error when two datasets give one input name different shapes or kinds.
  MixtureSource(std::vector<std::string> names, std::vector<std::shared_ptr<DatasetSource>> parts);

  DatasetSchema schema() const override;
  std::shared_ptr<Dataset> open(Split split) const override;

  bool needs_tokenizer() const override;
  void for_each_training_text(const std::function<void(const std::string&)>& visit) const override;
  void set_tokenizer(std::shared_ptr<const Tokenizer> tokenizer) override;
  /// Each dataset's artefacts in dir/<dataset name>.
  void save_artifacts(const std::string& dir) const override;
  void load_artifacts(const std::string& dir) override;

  const std::vector<std::string>& names() const { return names_; }
  const DatasetSource& part(size_t d) const { return *parts_[d]; }
  /// The dataset's own schema (label names without the prefix).
  const DatasetSchema& part_schema(size_t d) const;

 private:
  std::vector<std::string> names_;
  std::vector<std::shared_ptr<DatasetSource>> parts_;
  mutable std::vector<DatasetSchema> schemas_;  // filled by schema()
};

/// The batches evaluation walks through: consecutive examples, never crossing a mixture's dataset boundary.
std::vector<std::vector<int64_t>> sequential_batches(const Dataset& data, int64_t batch_size);

}  // namespace mtl
