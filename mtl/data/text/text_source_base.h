// TextSourceBase: what the text and conll dataset sources share. The run's tokenizer (set before the schema
// is asked for), the token-id input of the schema, the label vocabularies (class lists, tag sets) built once
// on first use (fixed lists or a scan of the training split) unless labels.json replaced them, and that
// labels.json artefact. A source derives from it and supplies the vocabularies and the examples.
//
//   class MySource : public TextSourceBase {
//     MySource(...) : TextSourceBase("mine", input, max_length, {{"topic", LabelKind::kClass}}) {}
//     std::vector<std::vector<std::string>> build_vocabularies() const override;  // one list per label
//     std::shared_ptr<Dataset> open(Split split) const override;                  // uses tokenizer("open()")
//   };
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "mtl/data/dataset.h"

namespace mtl {

class TextSourceBase : public DatasetSource {
 public:
  /// Token input {max_length + 1} (with <cls>) of the tokenizer's vocabulary, and one label per `labels`
  /// entry: its vocabulary as classes (size 1 and no classes for real labels).
  DatasetSchema schema() const override;

  bool needs_tokenizer() const override { return true; }
  void set_tokenizer(std::shared_ptr<const Tokenizer> tokenizer) override { tokenizer_ = std::move(tokenizer); }
  /// Writes `dir`/labels.json with the vocabulary of every class-like label.
  void save_artifacts(const std::string& dir) const override;
  /// Reads `dir`/labels.json; its lists replace the vocabularies (no scan of the training split).
  void load_artifacts(const std::string& dir) override;

 protected:
  /// `source` names the source in internal errors ("text", "conll").
  TextSourceBase(std::string source, std::string input, int64_t max_length,
                 std::vector<std::pair<std::string, LabelKind>> labels);

  /// One vocabulary per label, in label order (empty for real labels); called once, under a lock.
  virtual std::vector<std::vector<std::string>> build_vocabularies() const = 0;
  /// The vocabularies: built on first use, or those load_artifacts read.
  const std::vector<std::vector<std::string>>& vocabularies() const;
  /// The tokenizer; an internal error naming `caller` (e.g. "open()") when none was set.
  const Tokenizer& tokenizer(const char* caller) const;

 private:
  std::string source_;
  std::string input_;
  int64_t max_length_;
  std::vector<std::pair<std::string, LabelKind>> labels_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  mutable std::mutex mutex_;
  mutable bool have_vocabularies_ = false;
  mutable std::vector<std::vector<std::string>> vocabularies_;
};

}  // namespace mtl
