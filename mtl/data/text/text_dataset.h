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
//
//   mtl::TextOptions o;  o.train = "train.jsonl";  o.test = "test.jsonl";
//   o.labels = {{"party", "party", mtl::LabelKind::kClass, {}}};  // name, field, kind, fixed classes
//   auto source = std::make_shared<mtl::TextSource>(o);   // checks the options (mtl::Error "TextOptions.<key>")
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mtl/data/dataset.h"
#include "mtl/data/text/text_source_base.h"

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
  /// Throws mtl::Error(key, expected) for the first bad value (what from_config checks, for C++ callers).
  void validate() const;
  /// The format of `path`: `format` unless auto, else from the extension (mtl::Error when unknown).
  TextFormat format_of(const std::string& path) const;
};

/// The schema needs the tokenizer (vocab_size) and the class lists (given, or a scan of the training split,
/// once, unless loaded with load_artifacts: see TextSourceBase, which also writes labels.json).
class TextSource : public TextSourceBase {
 public:
  /// Throws mtl::Error "TextOptions.<key>: ..." for bad options.
  explicit TextSource(TextOptions options);

  /// Reads and tokenizes a split.
  std::shared_ptr<Dataset> open(Split split) const override;
  void for_each_training_text(const std::function<void(const std::string&)>& visit) const override;

  const TextOptions& options() const { return options_; }

 private:
  std::vector<std::vector<std::string>> build_vocabularies() const override;

  TextOptions options_;
};

/// Registry factory: from_config + constructor.
std::shared_ptr<DatasetSource> make_text_source(const ConfigNode& node);

}  // namespace mtl
