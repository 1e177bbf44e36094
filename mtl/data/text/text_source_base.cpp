#include "mtl/data/text/text_source_base.h"

#include "mtl/core/error.h"
#include "mtl/data/text/token_dataset.h"
#include "mtl/data/text/tokenizer.h"

namespace mtl {

TextSourceBase::TextSourceBase(std::string source, std::string input, int64_t max_length,
                               std::vector<std::pair<std::string, LabelKind>> labels)
    : source_(std::move(source)), input_(std::move(input)), max_length_(max_length), labels_(std::move(labels)) {}

const Tokenizer& TextSourceBase::tokenizer(const char* caller) const {
  TORCH_CHECK(tokenizer_, source_, " dataset: set_tokenizer() must be called before ", caller);
  return *tokenizer_;
}

const std::vector<std::vector<std::string>>& TextSourceBase::vocabularies() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!have_vocabularies_) {
    vocabularies_ = build_vocabularies();
    have_vocabularies_ = true;
  }
  return vocabularies_;
}

DatasetSchema TextSourceBase::schema() const {
  const Tokenizer& tok = tokenizer("schema()");
  const auto& vocab = vocabularies();
  DatasetSchema s;
  s.inputs.push_back(InputInfo{input_, {max_length_ + 1}, InputKind::kTokens, tok.vocab_size()});
  for (size_t k = 0; k < labels_.size(); ++k) {
    const auto& [name, kind] = labels_[k];
    const bool real = kind == LabelKind::kReal;
    s.labels.push_back(LabelInfo{name, kind, real ? 1 : static_cast<int64_t>(vocab[k].size()),
                                 real ? std::vector<std::string>{} : vocab[k], {}});
  }
  return s;
}

void TextSourceBase::save_artifacts(const std::string& dir) const {
  const auto& vocab = vocabularies();
  std::vector<LabelInfo> labels;
  for (size_t k = 0; k < labels_.size(); ++k)
    labels.push_back(LabelInfo{labels_[k].first, labels_[k].second, static_cast<int64_t>(vocab[k].size()), vocab[k], {}});
  text_data::write_labels_json(dir, labels);
}

void TextSourceBase::load_artifacts(const std::string& dir) {
  auto saved = text_data::read_labels_json(dir);
  std::vector<std::vector<std::string>> out(labels_.size());
  for (size_t k = 0; k < labels_.size(); ++k) {
    const auto& [name, kind] = labels_[k];
    if (kind == LabelKind::kReal) continue;
    auto it = saved.find(name);
    if (it == saved.end() || it->second.empty())
      throw Error(dir + "/labels.json", kind == LabelKind::kTokenClass
                                            ? "no tags for the label '" + name + "'"
                                            : std::string("no classes for the ") + to_string(kind) + " label '" + name + "'");
    out[k] = it->second;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  vocabularies_ = std::move(out);
  have_vocabularies_ = true;
}

}  // namespace mtl
