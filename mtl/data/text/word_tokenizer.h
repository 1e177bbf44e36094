// The "word" tokenizer: a closed vocabulary of whole words, counted on the training texts.
//
// Splitting rule (split_words): ASCII whitespace separates words; every ASCII punctuation character
// (!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~) is a token of its own ("don't." -> don ' t .); every other byte,
// non-ASCII UTF-8 included, belongs to a word ("café" is one word). `lowercase` folds ASCII A-Z only.
// decode() joins the words with single spaces, so decode(encode(x)) is x normalised this way when every
// word is in the vocabulary (unknown words decode as "<unk>").
//
// Vocabulary: words seen at least `min_freq` times, the `max_size` most frequent of them (ties broken by the
// word's bytes, so the result is deterministic), ids kFirstPieceId.. in that order. Saved as
// `vocab.txt` (one word per line in id order, the first three lines "<pad>", "<unk>", "<cls>") next to
// `tokenizer.json`. A user's vocabulary file (options.model) may leave out those three lines; then its
// first word gets id kFirstPieceId.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "mtl/data/text/tokenizer.h"

namespace mtl {

/// The words of `text` by the rule above.
std::vector<std::string> split_words(const std::string& text, bool lowercase);

class WordTokenizer : public Tokenizer {
 public:
  /// `words` in id order starting at kFirstPieceId (no reserved entries, no duplicates).
  WordTokenizer(std::vector<std::string> words, TokenizerOptions options);

  /// Counts the words of `corpus` and keeps the vocabulary described above.
  static std::shared_ptr<WordTokenizer> train(const TokenizerOptions& options, const TextCorpus& corpus);
  /// Reads a vocabulary file (one word per line); errors name path:line.
  static std::shared_ptr<WordTokenizer> load_vocab(const std::string& path, const TokenizerOptions& options);

  std::string type() const override { return "word"; }
  std::vector<int64_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  std::string piece(int64_t id) const override;
  int64_t vocab_size() const override { return kFirst + static_cast<int64_t>(words_.size()); }
  void save(const std::string& dir) const override;

  const TokenizerOptions& options() const { return options_; }

 private:
  static constexpr int64_t kFirst = 3;  // == kFirstPieceId (batch.h is kept out of this header)
  std::vector<std::string> words_;
  std::unordered_map<std::string, int64_t> ids_;
  TokenizerOptions options_;
};

}  // namespace mtl
