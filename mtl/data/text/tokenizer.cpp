// Tokenizer options, construction and loading; the tokenizers themselves are in word_tokenizer.cpp and
// sentencepiece_tokenizer.cpp.
#include "mtl/data/text/tokenizer.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <cstdint>
#include <fstream>
#include <type_traits>

#include "mtl/config/config_node.h"
#include "mtl/core/error.h"
#include "mtl/data/text/sentencepiece_tokenizer.h"
#include "mtl/data/text/word_tokenizer.h"

namespace mtl {

TokenizerOptions parse_tokenizer_options(const ConfigNode& node) {
  TokenizerOptions o;
  // Only the keys of the chosen type are read, so e.g. `model_type` under a word tokenizer is reported as an
  // unknown key by Config::check_unused.
  o.type = node.choice("type", o.type, {"word", "sentencepiece"});
  o.model = node.get<std::string>("model", "");
  if (o.type == "word") {
    o.lowercase = node.get<bool>("lowercase", o.lowercase);
    o.min_freq = positive<int64_t>(node, "min_freq", o.min_freq);
    o.max_size = positive<int64_t>(node, "max_size", o.max_size);
  } else {
    o.model_type = node.choice("model_type", o.model_type, {"unigram", "bpe"});
    o.vocab_size = positive<int64_t>(node, "vocab_size", o.vocab_size);
    node.check(o.vocab_size <= (int64_t{1} << 30), "vocab_size", "expected at most 2^30 pieces");
    o.character_coverage = node.get<double>("character_coverage", o.character_coverage);
    node.check(o.character_coverage > 0 && o.character_coverage <= 1, "character_coverage",
               "expected a value in (0, 1], got " + std::to_string(o.character_coverage));
  }
  return o;
}

std::shared_ptr<Tokenizer> make_tokenizer(const TokenizerOptions& options, const TextCorpus& corpus) {
  if (options.type == "word")
    return options.model.empty() ? std::shared_ptr<Tokenizer>(WordTokenizer::train(options, corpus))
                                 : WordTokenizer::load_vocab(options.model, options);
  if (options.type == "sentencepiece")
    return options.model.empty() ? std::shared_ptr<Tokenizer>(SentencePieceTokenizer::train(options, corpus))
                                 : SentencePieceTokenizer::load_model(options.model, options);
  throw Error("tokenizer.type", "unknown tokenizer type '" + options.type + "'; expected one of: word, sentencepiece");
}

std::shared_ptr<Tokenizer> load_tokenizer(const std::string& dir) {
  const std::string path = dir + "/tokenizer.json";
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path, std::string("cannot open the tokenizer description: ") + std::strerror(errno));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path, std::string("corrupt tokenizer description (not JSON): ") + e.what());
  }
  auto field = [&](const char* key, auto fallback) {
    using T = decltype(fallback);
    if (!j.is_object() || !j.contains(key)) throw Error(path, std::string("corrupt tokenizer description: no '") + key + "'");
    const nlohmann::json& v = j.at(key);
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      // nlohmann converts a float (5.6e118) to an integer with a cast: out of range, that is undefined
      // behaviour (found by fuzzing). Only JSON integers that fit are accepted.
      if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX)))
        throw Error(path, std::string("corrupt tokenizer description: '") + key + "' is not an integer");
    }
    try {
      return v.get<T>();
    } catch (const nlohmann::json::exception& e) {
      throw Error(path, std::string("corrupt tokenizer description: '") + key + "' has the wrong type");
    }
  };
  TokenizerOptions o;
  o.type = field("type", std::string());
  if (o.type == "word") {
    o.lowercase = field("lowercase", true);
    o.min_freq = field("min_freq", int64_t{0});
    o.max_size = field("max_size", int64_t{0});
    return WordTokenizer::load_vocab(dir + "/" + field("vocab", std::string()), o);
  }
  if (o.type == "sentencepiece") {
    o.model_type = field("model_type", std::string());
    o.vocab_size = field("vocab_size", int64_t{0});
    o.character_coverage = field("character_coverage", 0.0);
    return SentencePieceTokenizer::load_model(dir + "/" + field("model", std::string()), o);
  }
  throw Error(path, "unknown tokenizer type '" + o.type + "'; expected word or sentencepiece");
}

}  // namespace mtl
