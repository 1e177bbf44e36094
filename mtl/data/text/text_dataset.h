// The "text" dataset source: one text per example with example-level labels, from JSON Lines, CSV or TSV.
//
//   data:
//     type: text
//     train: data/train.jsonl
//     test: data/test.jsonl
//     format: auto              # auto (from the extension: .jsonl/.json, .csv, .tsv/.tab) | jsonl | csv | tsv
//     text: text                # the field (JSONL key or CSV/TSV column) holding the text
//     input: text               # name of the token-id input in each Batch
//     max_length: 256           # tokens kept after <cls>; longer texts are truncated
//     labels:
//       party: {field: party, kind: class}         # field defaults to the label name, kind to class
//       year: {kind: real}
//       topics: {kind: multilabel, classes: [economy, war, trade]}   # classes: optional fixed list
//
// JSONL: one JSON object per line (blank lines skipped). A class value is a string or an integer, a real
// value a number, a multi-label value a list of strings (or integers). CSV/TSV: the first row is the
// header; CSV fields may be "quoted" ("" is a quote inside one), but a record is one line (no newlines
// inside quotes); TSV splits on tabs with no quoting. Multi-label values in CSV/TSV are separated by '|'.
// Classes are the distinct training values sorted (numerically when all are integers) unless given; a
// value outside them is an error naming file:line. Every example needs every label field. Each input error
// (bad JSON, missing field, wrong type, unknown class, invalid UTF-8, wrong field count, empty or missing
// file) is one mtl::Error located at file:line (or the file).
//
// Texts are tokenized by the run's tokenizer (set_tokenizer) when a split is opened; only the ids are kept.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "mtl/data/dataset.h"

namespace mtl {

class ConfigNode;

struct TextLabelSpec {
  std::string name;
  std::string field;                 // JSONL key or CSV/TSV column
  LabelKind kind = LabelKind::kClass;  // kClass, kReal or kMultiLabel
  std::vector<std::string> classes;  // fixed class list; empty = from the training split
};

enum class TextFormat { kJsonl, kCsv, kTsv };

struct TextOptions {
  std::string train;
  std::string test;
  std::string format = "auto";
  std::string text_field = "text";
  std::string input = "text";
  int64_t max_length = 256;
  std::vector<TextLabelSpec> labels;

  /// Reads and validates the options of a `data:` node (its `type` is read by the caller).
  static TextOptions from_config(const ConfigNode& node);
  /// The format of `path`: `format` unless auto, else from the extension (mtl::Error when unknown).
  TextFormat format_of(const std::string& path) const;
};

class TextSource : public DatasetSource {
 public:
  explicit TextSource(TextOptions options) : options_(std::move(options)) {}

  /// Needs the tokenizer (vocab_size) and the class lists (a scan of the training split, once, unless
  /// given or loaded with load_artifacts).
  DatasetSchema schema() const override;
  /// Reads and tokenizes a split.
  std::shared_ptr<Dataset> open(Split split) const override;

  bool needs_tokenizer() const override { return true; }
  void for_each_training_text(const std::function<void(const std::string&)>& visit) const override;
  void set_tokenizer(std::shared_ptr<const Tokenizer> tokenizer) override { tokenizer_ = std::move(tokenizer); }
  /// Writes `dir`/labels.json (the class list of each class and multi-label label).
  void save_artifacts(const std::string& dir) const override;
  /// Reads `dir`/labels.json; its class lists replace the training scan.
  void load_artifacts(const std::string& dir) override;

  const TextOptions& options() const { return options_; }

 private:
  const std::vector<std::vector<std::string>>& classes() const;

  TextOptions options_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  mutable std::mutex mutex_;
  mutable bool have_classes_ = false;
  mutable std::vector<std::vector<std::string>> classes_;  // per label (empty for real labels)
};

std::shared_ptr<DatasetSource> make_text_source(const ConfigNode& node);

}  // namespace mtl
