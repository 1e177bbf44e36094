// The "csv" dataset source: a user's tabular data, one CSV file per split, first row a header.
//
//   data:
//     type: csv
//     train: data/train.csv
//     test: data/test.csv
//     delimiter: ","                       # one character
//     labels:
//       species: {column: species, kind: class}    # column defaults to the label name, kind to class
//       weight: {column: weight_kg, kind: real}
//     features: [length, width]            # default (or []): every column that is not a label column
//     standardize: true                    # features -> (x - mean) / std with the train file's statistics
//
// Class labels may be integers or strings. The classes are the distinct values in the train file, sorted
// (numerically when all are integers, else as strings); class i is the i-th of them, so {1, 2, 3} become
// 0, 1, 2. A test value that is not among them is an error naming file:line. Real labels are numbers and
// become float targets [B]. Standardisation uses the population std (divide by N); a constant column gets
// std 1. Fields may be quoted with "..." ("" is a quote inside one); blank lines are skipped; surrounding
// spaces are trimmed. Every input error is one line naming file:line (and the column where one is at
// fault). Relative paths are relative to the current working directory.
//
//   mtl::CsvOptions o;  o.train = "train.csv";  o.test = "test.csv";  o.labels = {{"species", "species"}};
//   auto source = std::make_shared<mtl::CsvSource>(o);
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "mtl/data/dataset.h"

namespace mtl {

class ConfigNode;

struct CsvLabelSpec {
  std::string name;
  std::string column;
  LabelKind kind = LabelKind::kClass;  // kClass or kReal
};

struct CsvOptions {
  std::string train;
  std::string test;
  char delimiter = ',';
  std::vector<CsvLabelSpec> labels;
  std::vector<std::string> features;  // empty = every non-label column
  bool standardize = true;

  /// Reads and validates the options of a `data:` node (its `type` is read by the caller).
  static CsvOptions from_config(const ConfigNode& node);
  /// Throws mtl::Error(key, expected) for the first bad value (what from_config checks, for C++ callers).
  void validate() const;
};

/// Splits one CSV line into trimmed fields, honouring "..." quoting. Throws mtl::Error(where, ...) on an
/// unterminated quote.
std::vector<std::string> split_csv_line(const std::string& line, char delimiter, const std::string& where);

class CsvSource : public DatasetSource {
 public:
  /// Throws mtl::Error "CsvOptions.<key>: ..." for bad options.
  explicit CsvSource(CsvOptions options);
  /// Parses the train file (once, kept for open(kTrain)): the schema needs its columns and classes.
  DatasetSchema schema() const override;
  std::shared_ptr<Dataset> open(Split split) const override;

  /// Per-feature standardisation statistics of the train file (empty when standardize is off).
  std::vector<double> feature_mean() const;
  std::vector<double> feature_std() const;

 private:
  struct Table {
    at::Tensor features;  // float32 [N, F]
    TensorMap labels;     // int64 [N] (class) or float32 [N] (real)
  };
  struct TrainState {
    DatasetSchema schema;
    std::vector<std::string> feature_columns;
    std::vector<std::vector<std::string>> classes;  // per label (empty for real labels)
    std::vector<double> mean, std;
    Table table;
  };
  const TrainState& train_state() const;

  CsvOptions options_;
  mutable std::once_flag train_once_;
  mutable std::unique_ptr<TrainState> train_;
};

std::shared_ptr<DatasetSource> make_csv_source(const ConfigNode& node);

}  // namespace mtl
