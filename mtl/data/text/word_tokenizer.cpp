#include "mtl/data/text/word_tokenizer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "mtl/core/batch.h"
#include "mtl/core/error.h"
#include "mtl/data/text/utf8.h"
#include "mtl/io/atomic_file.h"

namespace mtl {

static_assert(kFirstPieceId == 3, "WordTokenizer::kFirst mirrors kFirstPieceId");

namespace {

const char* const kReserved[] = {"<pad>", "<unk>", "<cls>"};

bool is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }
bool is_punct(unsigned char c) {
  return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E);
}

}  // namespace

std::vector<std::string> split_words(const std::string& text, bool lowercase) {
  std::vector<std::string> words;
  std::string word;
  auto flush = [&] {
    if (!word.empty()) words.push_back(std::move(word));
    word.clear();
  };
  for (char ch : text) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (is_space(c)) {
      flush();
    } else if (is_punct(c)) {
      flush();
      words.emplace_back(1, ch);
    } else {
      word += (lowercase && c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : ch;
    }
  }
  flush();
  return words;
}

WordTokenizer::WordTokenizer(std::vector<std::string> words, TokenizerOptions options)
    : words_(std::move(words)), options_(std::move(options)) {
  options_.type = "word";
  ids_.reserve(words_.size());
  for (size_t i = 0; i < words_.size(); ++i) ids_.emplace(words_[i], kFirst + static_cast<int64_t>(i));
}

std::shared_ptr<WordTokenizer> WordTokenizer::train(const TokenizerOptions& options, const TextCorpus& corpus) {
  std::unordered_map<std::string, int64_t> counts;
  int64_t texts = 0;
  corpus([&](const std::string& text) {
    ++texts;
    for (auto& w : split_words(text, options.lowercase)) ++counts[w];
  });
  if (counts.empty())
    throw Error("tokenizer", "no words in the training texts (" + std::to_string(texts) +
                                 " texts) to build the word vocabulary from");
  std::vector<std::pair<int64_t, std::string>> kept;
  for (auto& [w, c] : counts)
    if (c >= options.min_freq) kept.emplace_back(c, w);
  std::sort(kept.begin(), kept.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  if (static_cast<int64_t>(kept.size()) > options.max_size) kept.resize(static_cast<size_t>(options.max_size));
  std::vector<std::string> words;
  words.reserve(kept.size());
  for (auto& p : kept) words.push_back(std::move(p.second));
  return std::make_shared<WordTokenizer>(std::move(words), options);
}

std::shared_ptr<WordTokenizer> WordTokenizer::load_vocab(const std::string& path, const TokenizerOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path, std::string("cannot open the vocabulary file: ") + std::strerror(errno));
  std::vector<std::string> lines;
  std::string line;
  int64_t n = 0;
  std::unordered_map<std::string, int64_t> seen;
  while (std::getline(in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::string where = path + ":" + std::to_string(n);
    size_t bad = find_invalid_utf8(line);
    if (bad != std::string::npos) throw Error(where, "invalid UTF-8 at byte " + std::to_string(bad) + " of the line");
    if (line.empty()) throw Error(where, "empty line in the vocabulary (one word per line)");
    for (char c : line)
      if (is_space(static_cast<unsigned char>(c))) throw Error(where, "word '" + line + "' contains whitespace");
    auto [it, fresh] = seen.emplace(line, n);
    if (!fresh) throw Error(where, "word '" + line + "' repeats line " + std::to_string(it->second));
    lines.push_back(line);
  }
  if (in.bad()) throw Error(path, "read error");
  size_t skip = 0;
  if (lines.size() >= 3 && lines[0] == kReserved[0] && lines[1] == kReserved[1] && lines[2] == kReserved[2]) skip = 3;
  for (size_t i = skip; i < lines.size(); ++i)
    for (const char* r : kReserved)
      if (lines[i] == r)
        throw Error(path + ":" + std::to_string(i + 1),
                    std::string("reserved word ") + r + " may only appear as the first three lines <pad>, <unk>, <cls>");
  if (lines.size() == skip) throw Error(path, "the vocabulary has no words");
  TokenizerOptions o = options;
  o.model = path;
  return std::make_shared<WordTokenizer>(std::vector<std::string>(lines.begin() + skip, lines.end()), o);
}

std::vector<int64_t> WordTokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  for (const auto& w : split_words(text, options_.lowercase)) {
    auto it = ids_.find(w);
    ids.push_back(it == ids_.end() ? kUnkTokenId : it->second);
  }
  return ids;
}

std::string WordTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string out;
  for (int64_t id : ids) {
    if (id == kPadTokenId || id == kClsTokenId) continue;
    if (!out.empty()) out += ' ';
    out += piece(id);
  }
  return out;
}

std::string WordTokenizer::piece(int64_t id) const {
  if (id >= 0 && id < kFirst) return kReserved[id];
  if (id < 0 || id >= vocab_size())
    throw Error("tokenizer", "token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                                 std::to_string(vocab_size()) + ")");
  return words_[static_cast<size_t>(id - kFirst)];
}

void WordTokenizer::save(const std::string& dir) const {
  ensure_writable_dir(dir);
  std::string vocab;
  for (const char* r : kReserved) vocab += std::string(r) + "\n";
  for (const auto& w : words_) vocab += w + "\n";
  write_file_atomic(dir + "/vocab.txt", vocab);
  nlohmann::json j = {{"type", "word"},
                      {"lowercase", options_.lowercase},
                      {"min_freq", options_.min_freq},
                      {"max_size", options_.max_size},
                      {"vocab_size", vocab_size()},
                      {"vocab", "vocab.txt"}};
  write_file_atomic(dir + "/tokenizer.json", j.dump(2) + "\n");
}

}  // namespace mtl
