// The "conll" dataset source: token-level tags (NER, POS, chunks) in CoNLL format.
//
//   data:
//     type: conll
//     train: data/train.conll
//     test: data/test.conll
//     columns: [token, pos, ner]   # names of the columns of each line, in order
//     token_column: token          # which column holds the word (default "token")
//     labels: [ner]                # tag columns; each becomes a token_class label
//     classes: {ner: [B-PER, I-PER, O]}   # optional fixed tag lists (default: sorted training tags)
//     separator: whitespace        # whitespace (runs of spaces/tabs) | tab (exactly one tab)
//     input: text
//     max_length: 256              # word pieces kept after <cls>
//
// One word per line, a blank line between sentences, `-DOCSTART-` lines skipped. Each word is encoded on its
// own by the run's tokenizer; its first piece carries the word's tag, later pieces kIgnoreIndex (a word
// the tokenizer encodes to nothing gets one <unk> piece, so every word has a position). Targets are int64
// [B, L] aligned with the ids: kIgnoreIndex at <cls>, at padding and at non-first pieces. A sentence longer
// than max_length pieces is truncated. Input errors are one-line mtl::Errors at file:line.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "mtl/data/dataset.h"

namespace mtl {

class ConfigNode;

struct ConllOptions {
  std::string train;
  std::string test;
  std::vector<std::string> columns;
  std::string token_column = "token";
  std::vector<std::string> labels;                          // tag columns
  std::map<std::string, std::vector<std::string>> classes;  // fixed tag lists by label
  bool tab_separated = false;
  std::string input = "text";
  int64_t max_length = 256;

  static ConllOptions from_config(const ConfigNode& node);
};

class ConllSource : public DatasetSource {
 public:
  explicit ConllSource(ConllOptions options) : options_(std::move(options)) {}

  DatasetSchema schema() const override;
  std::shared_ptr<Dataset> open(Split split) const override;

  bool needs_tokenizer() const override { return true; }
  /// Each training sentence as its words joined by single spaces.
  void for_each_training_text(const std::function<void(const std::string&)>& visit) const override;
  void set_tokenizer(std::shared_ptr<const Tokenizer> tokenizer) override { tokenizer_ = std::move(tokenizer); }
  /// `dir`/labels.json with each label's tag list.
  void save_artifacts(const std::string& dir) const override;
  void load_artifacts(const std::string& dir) override;

 private:
  const std::vector<std::vector<std::string>>& tags() const;

  ConllOptions options_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  mutable std::mutex mutex_;
  mutable bool have_tags_ = false;
  mutable std::vector<std::vector<std::string>> tags_;  // per label
};

std::shared_ptr<DatasetSource> make_conll_source(const ConfigNode& node);

}  // namespace mtl
