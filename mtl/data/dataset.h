// Dataset interface. A DatasetSource is built from the `data:` section of a config (options parsed and
// validated, nothing heavy loaded); it reports its schema cheaply and opens splits on demand.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mtl/core/batch.h"
#include "mtl/core/registry.h"

namespace mtl {

class ConfigNode;
class Tokenizer;  // mtl/data/text/tokenizer.h

enum class Split { kTrain, kTest };
const char* to_string(Split split);

/// Random access to examples; `batch` collates the given examples and must be safe to call from several
/// threads at once (loader workers).
/// A contiguous range of a dataset's examples that came from one named dataset (tasks from several datasets).
struct DatasetPart {
  std::string name;    // the `datasets:` key; empty for a single dataset
  int64_t offset = 0;  // index of its first example
  int64_t size = 0;
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual Batch batch(const std::vector<int64_t>& indices) const = 0;
  /// Text datasets: each example's length in tokens (for length bucketing); empty when not applicable.
  virtual std::vector<int64_t> lengths() const { return {}; }
  /// The named datasets this one is made of (a mixture's parts; batches never mix them), or none.
  virtual std::vector<DatasetPart> dataset_parts() const { return {}; }
};

class DatasetSource {
 public:
  virtual ~DatasetSource() = default;
  virtual DatasetSchema schema() const = 0;
  virtual std::shared_ptr<Dataset> open(Split split) const = 0;

  // Text sources. A run has one tokenizer shared by all its text datasets (their token ids feed one
  // embedding): the assembler (mtl::assemble) trains it on every source's training texts, or loads the one a run
  // saved, and hands it to each source before asking for the schema.
  /// Whether examples have a text field that needs the tokenizer.
  virtual bool needs_tokenizer() const { return false; }
  /// Calls `visit` with every text of the training split (streamed; used to train the tokenizer).
  virtual void for_each_training_text(const std::function<void(const std::string&)>& visit) const { (void)visit; }
  virtual void set_tokenizer(std::shared_ptr<const Tokenizer> tokenizer) { (void)tokenizer; }
  /// Vocabularies a source derives from its training split (class names of a label field given as strings,
  /// tag sets): written into `dir` with a run, read back by eval/predict/resume so that class indices stay
  /// those the model was trained with. Called before schema(); a missing file is an error naming it.
  virtual void save_artifacts(const std::string& dir) const { (void)dir; }
  virtual void load_artifacts(const std::string& dir) { (void)dir; }
};

using DatasetFactory = std::function<std::shared_ptr<DatasetSource>(const ConfigNode& options)>;
Registry<DatasetFactory>& dataset_registry();

}  // namespace mtl
