// Tokenizers: text -> token ids. One tokenizer per run, shared by all its text datasets, trained on their
// training splits (or loaded from a file) and saved in the run directory, so eval/predict encode text
// exactly as training did. Ids 0..2 are reserved (kPadTokenId, kUnkTokenId, kClsTokenId in batch.h);
// a tokenizer's own pieces start at kFirstPieceId.
//   auto tok = make_tokenizer(parse_tokenizer_options(cfg.child("tokenizer")), corpus);
//   std::vector<int64_t> ids = tok->encode("The Union is strong.");
//   tok->save(run_dir + "/tokenizer");  ...  auto again = load_tokenizer(run_dir + "/tokenizer");
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace mtl {

class ConfigNode;

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  /// "word" or "sentencepiece".
  virtual std::string type() const = 0;
  /// Ids of `text` (valid UTF-8), without specials; unknown words/pieces map to kUnkTokenId.
  virtual std::vector<int64_t> encode(const std::string& text) const = 0;
  /// Text of `ids` (specials skipped); the inverse of encode up to normalisation (case, spacing).
  virtual std::string decode(const std::vector<int64_t>& ids) const = 0;
  /// The word/piece of one id ("<pad>", "<unk>", "<cls>" for the reserved ones).
  virtual std::string piece(int64_t id) const = 0;
  /// Number of ids including the reserved ones.
  virtual int64_t vocab_size() const = 0;
  /// Writes everything needed to load it again into directory `dir` (created if missing; atomic files).
  virtual void save(const std::string& dir) const = 0;
};

struct TokenizerOptions {
  std::string type = "word";  // word | sentencepiece
  // word
  bool lowercase = true;
  int64_t min_freq = 1;       // words seen fewer times in the training text become <unk>
  int64_t max_size = 30000;   // most frequent words kept (ties broken by the word, so deterministic)
  // sentencepiece
  std::string model_type = "unigram";  // unigram | bpe
  int64_t vocab_size = 8000;           // pieces to train
  double character_coverage = 1.0;
  // either: an existing vocabulary (word: one word per line) or .model file (sentencepiece) to load
  std::string model;
};

/// Options from a `tokenizer:` config section (unknown keys and bad values are config errors).
TokenizerOptions parse_tokenizer_options(const ConfigNode& node);

/// A corpus is a function that calls its argument once per training text.
using TextCorpus = std::function<void(const std::function<void(const std::string&)>& visit)>;

/// Builds the tokenizer: loads `options.model` when set, else trains on `corpus`.
std::shared_ptr<Tokenizer> make_tokenizer(const TokenizerOptions& options, const TextCorpus& corpus);

/// Loads a tokenizer written by Tokenizer::save; throws mtl::Error naming the file when missing or corrupt.
std::shared_ptr<Tokenizer> load_tokenizer(const std::string& dir);

}  // namespace mtl
