// The "sentencepiece" tokenizer: a SentencePiece unigram or BPE model, trained on the training texts or
// loaded from a `.model` file. SentencePiece itself runs in a plugin (see sentencepiece_plugin.h).
//
// Ids: a SentencePiece piece with id p has our id kFirstPieceId + p. SentencePiece's own unknown piece
// encodes as kUnkTokenId and its control pieces (<s>, </s>, when a loaded model has them) are never emitted,
// so every tokenizer shares ids 0..2; vocab_size() = kFirstPieceId + the model's piece count.
// Training: `vocab_size` is an upper bound (SentencePiece's hard_vocab_limit is off, so a small corpus
// gives a smaller vocabulary rather than an error); texts are written to a temporary file one per line
// (newlines inside a text become spaces; texts over 8 KiB are split at spaces). Text is normalised
// with SentencePiece's default NFKC rule; decode() returns the normalised text (unknown pieces as " ⁇ ").
// Saved as `sentencepiece.model` (the serialized ModelProto, loadable by any SentencePiece) next to
// `tokenizer.json`.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mtl/data/text/tokenizer.h"

namespace mtl {

namespace detail {
class SentencePieceBackend;
}

class SentencePieceTokenizer : public Tokenizer {
 public:
  /// Trains a model on `corpus` with options.model_type, vocab_size and character_coverage.
  static std::shared_ptr<SentencePieceTokenizer> train(const TokenizerOptions& options, const TextCorpus& corpus);
  /// Loads a `.model` file; throws mtl::Error naming `path` when it is missing or not a model.
  static std::shared_ptr<SentencePieceTokenizer> load_model(const std::string& path, const TokenizerOptions& options);

  std::string type() const override { return "sentencepiece"; }
  std::vector<int64_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  std::string piece(int64_t id) const override;
  int64_t vocab_size() const override;
  void save(const std::string& dir) const override;

  const TokenizerOptions& options() const { return options_; }

 private:
  SentencePieceTokenizer(std::shared_ptr<detail::SentencePieceBackend> backend, TokenizerOptions options);
  std::shared_ptr<detail::SentencePieceBackend> backend_;
  TokenizerOptions options_;
};

/// Whether the SentencePiece plugin can be loaded (it is built with mtl; tests use this to report clearly).
bool sentencepiece_available(std::string* why = nullptr);

/// True in a sanitizer build (tools/sanitize.sh): the plugin's dlopen(RTLD_DEEPBIND) is refused by the
/// sanitizers' runtime, so SentencePiece is unavailable there (a one-line error; its tests skip).
bool sentencepiece_blocked_by_sanitizers();

}  // namespace mtl
