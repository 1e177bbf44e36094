// The boundary between mtl and its SentencePiece plugin (libmtl_sentencepiece.so, built from
// sentencepiece_plugin.cpp). mtl never links libsentencepiece: Debian's build bundles and exports protobuf
// 3.14, which clashes with the protobuf 3.21 that libtorch loads (a process linking both crashes at start-up).
// The plugin is loaded with dlopen(RTLD_LOCAL | RTLD_DEEPBIND), so SentencePiece binds to its own protobuf.
// Only standard-library types cross the boundary (one libstdc++ serves both sides) and no exception does.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace mtl {
namespace detail {

/// One loaded SentencePiece model (a SentencePieceProcessor inside the plugin). Encoding is thread-safe.
class SentencePieceBackend {
 public:
  virtual ~SentencePieceBackend() = default;
  /// Loads a serialized ModelProto; false with `error` set when it is not one.
  virtual bool load(const std::string& serialized, std::string* error) = 0;
  virtual int piece_size() const = 0;
  virtual int unk_id() const = 0;
  virtual bool is_unknown(int id) const = 0;
  virtual bool is_control(int id) const = 0;
  virtual std::string id_to_piece(int id) const = 0;
  virtual std::vector<int> encode(const std::string& text) const = 0;
  virtual std::string decode(const std::vector<int>& ids) const = 0;
  virtual std::string serialized() const = 0;
};

constexpr int kSentencePiecePluginAbi = 1;

}  // namespace detail
}  // namespace mtl

extern "C" {
/// kSentencePiecePluginAbi of the plugin's build; the loader refuses a plugin with another value.
using MtlSpmAbiFn = int (*)();
/// A new, empty backend; free it with `delete` (its destructor is virtual and lives in the plugin).
using MtlSpmCreateFn = mtl::detail::SentencePieceBackend* (*)();
/// SentencePieceTrainer::Train with these flags (e.g. {"input", path}, {"vocab_size", "8000"}): true with
/// the serialized model in `model`, or false with `error` set.
using MtlSpmTrainFn = bool (*)(const std::vector<std::pair<std::string, std::string>>* flags, std::string* model,
                               std::string* error);
}
