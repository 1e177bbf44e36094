// CoNLL token files: whitespace columns, blank lines between sentences, -DOCSTART- lines, tag columns.
#include "fuzz_util.h"

namespace {

int fuzz_conll(const uint8_t* data, size_t size) {
  const std::string path = mtl_fuzz::input_file(data, size, "input.conll");
  return mtl_fuzz::expect_mtl_errors_only([&] {
    auto source = mtl_fuzz::source_from("{type: conll, train: '" + path + "', test: '" + path +
                                        "', columns: [token, pos, ner], labels: [pos, ner]}");
    mtl_fuzz::read_like_a_run(*source);
  });
}

}  // namespace

MTL_FUZZ_TARGET("conll", fuzz_conll)
