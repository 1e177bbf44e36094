// CSV tables: header, quoting, numbers, class and real labels, feature statistics, batches of both splits.
#include "fuzz_util.h"

namespace {

int fuzz_csv(const uint8_t* data, size_t size) {
  const std::string path = mtl_fuzz::input_file(data, size, "input.csv");
  return mtl_fuzz::expect_mtl_errors_only([&] {
    auto source = mtl_fuzz::source_from("{type: csv, train: '" + path + "', test: '" + path +
                                        "', labels: {a: {kind: class}, b: {kind: real}}}");
    mtl_fuzz::read_like_a_run(*source);
  });
}

}  // namespace

MTL_FUZZ_TARGET("csv", fuzz_csv)
