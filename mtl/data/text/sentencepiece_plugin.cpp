// The SentencePiece plugin (libmtl_sentencepiece.so): wraps SentencePieceProcessor and SentencePieceTrainer
// behind the interface of sentencepiece_plugin.h. Built as a separate module, never part of libmtl.a; see
// that header for why.
#include "mtl/data/text/sentencepiece_plugin.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <exception>
#include <unordered_map>

namespace {

class Backend : public mtl::detail::SentencePieceBackend {
 public:
  bool load(const std::string& serialized, std::string* error) override {
    auto status = sp_.LoadFromSerializedProto(serialized);
    if (!status.ok()) {
      *error = status.ToString();
      return false;
    }
    return true;
  }
  int piece_size() const override { return sp_.GetPieceSize(); }
  int unk_id() const override { return sp_.unk_id(); }
  bool is_unknown(int id) const override { return sp_.IsUnknown(id); }
  bool is_control(int id) const override { return sp_.IsControl(id); }
  std::string id_to_piece(int id) const override { return sp_.IdToPiece(id); }
  std::vector<int> encode(const std::string& text) const override {
    std::vector<int> ids;
    sp_.Encode(text, &ids);  // only fails on an unloaded model
    return ids;
  }
  std::string decode(const std::vector<int>& ids) const override {
    std::string text;
    sp_.Decode(ids, &text);
    return text;
  }
  std::string serialized() const override { return sp_.serialized_model_proto(); }

 private:
  sentencepiece::SentencePieceProcessor sp_;
};

}  // namespace

extern "C" {

__attribute__((visibility("default"))) int mtl_spm_abi() { return mtl::detail::kSentencePiecePluginAbi; }

__attribute__((visibility("default"))) mtl::detail::SentencePieceBackend* mtl_spm_create() {
  return new Backend();
}

__attribute__((visibility("default"))) bool mtl_spm_train(
    const std::vector<std::pair<std::string, std::string>>* flags, std::string* model, std::string* error) {
  try {
    std::unordered_map<std::string, std::string> kwargs(flags->begin(), flags->end());
    auto status = sentencepiece::SentencePieceTrainer::Train(kwargs, nullptr, model);
    if (!status.ok()) {
      *error = status.ToString();
      return false;
    }
    return true;
  } catch (const std::exception& e) {
    *error = e.what();
    return false;
  }
}

}  // extern "C"
