// JSONL text records: one JSON object per line with a text field and class / real labels; the word tokenizer is
// trained on the texts, then both splits are batched.
#include "fuzz_util.h"

namespace {

int fuzz_jsonl(const uint8_t* data, size_t size) {
  const std::string path = mtl_fuzz::input_file(data, size, "input.jsonl");
  return mtl_fuzz::expect_mtl_errors_only([&] {
    auto source = mtl_fuzz::source_from("{type: text, train: '" + path + "', test: '" + path +
                                        "', text: text, labels: {c: {kind: class}, r: {kind: real}}}");
    mtl_fuzz::read_like_a_run(*source);
  });
}

}  // namespace

MTL_FUZZ_TARGET("jsonl", fuzz_jsonl)
