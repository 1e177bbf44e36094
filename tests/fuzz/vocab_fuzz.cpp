// A saved word tokenizer (what a run directory's tokenizer/ holds): tokenizer.json and the vocabulary file, the
// input's two parts split at the first NUL byte; then it encodes and decodes a text.
#include "fuzz_util.h"

namespace {

int fuzz_vocab(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t cut = input.find('\0');
  const std::string json = input.substr(0, cut);
  const std::string vocab = cut == std::string::npos ? "" : input.substr(cut + 1);
  mtl_fuzz::input_file(reinterpret_cast<const uint8_t*>(json.data()), json.size(), "tokenizer.json");
  mtl_fuzz::input_file(reinterpret_cast<const uint8_t*>(vocab.data()), vocab.size(), "vocab.txt");
  return mtl_fuzz::expect_mtl_errors_only([&] {
    auto tok = mtl::load_tokenizer(mtl_fuzz::scratch_dir());
    const std::vector<int64_t> ids = tok->encode("The quick brown fox, jumps over 12 lazy dogs! Ünïcödé");
    tok->decode(ids);
    for (int64_t id = 0; id < std::min<int64_t>(tok->vocab_size(), 16); ++id) tok->piece(id);
  });
}

}  // namespace

MTL_FUZZ_TARGET("vocab", fuzz_vocab)
