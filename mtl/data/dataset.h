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

enum class Split { kTrain, kTest };
const char* to_string(Split split);

/// Random access to examples; `batch` collates the given examples and must be safe to call from several
/// threads at once (loader workers).
class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual Batch batch(const std::vector<int64_t>& indices) const = 0;
};

class DatasetSource {
 public:
  virtual ~DatasetSource() = default;
  virtual DatasetSchema schema() const = 0;
  virtual std::shared_ptr<Dataset> open(Split split) const = 0;
};

using DatasetFactory = std::function<std::shared_ptr<DatasetSource>(const ConfigNode& options)>;
Registry<DatasetFactory>& dataset_registry();

}  // namespace mtl
