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
//
//   mtl::ConllOptions o;  o.train = "train.conll";  o.test = "test.conll";  o.columns = {"token", "ner"};
//   o.labels = {"ner"};   auto source = std::make_shared<mtl::ConllSource>(o);   // "ConllOptions.<key>" errors
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mtl/data/dataset.h"
#include "mtl/data/text/text_source_base.h"

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

  /// Reads and validates the options of a `data:` node (its `type` is read by the caller).
  static ConllOptions from_config(const ConfigNode& node);
  /// Throws mtl::Error(key, expected) for the first bad value (what from_config checks, for C++ callers).
  void validate() const;
};

/// Token-class labels whose tag lists are fixed or scanned from the training split once (TextSourceBase,
/// which also writes and reads them as labels.json).
class ConllSource : public TextSourceBase {
 public:
  /// Throws mtl::Error "ConllOptions.<key>: ..." for bad options.
  explicit ConllSource(ConllOptions options);

  std::shared_ptr<Dataset> open(Split split) const override;
  /// Each training sentence as its words joined by single spaces.
  void for_each_training_text(const std::function<void(const std::string&)>& visit) const override;

  const ConllOptions& options() const { return options_; }

 private:
  std::vector<std::vector<std::string>> build_vocabularies() const override;

  ConllOptions options_;
};

/// Registry factory: from_config + constructor.
std::shared_ptr<DatasetSource> make_conll_source(const ConfigNode& node);

}  // namespace mtl
