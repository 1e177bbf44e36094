// The IDX reader (plain or gzip-compressed files, as Fashion-MNIST ships them): the header alone, then the whole
// tensor.
#include "fuzz_util.h"
#include "mtl/data/idx.h"

namespace {

int fuzz_idx(const uint8_t* data, size_t size) {
  const std::string path = mtl_fuzz::input_file(data, size, "input-idx3-ubyte");
  return mtl_fuzz::expect_mtl_errors_only([&] {
    mtl_fuzz::expect_mtl_errors_only([&] { mtl::read_idx_header(path); });
    mtl::read_idx(path);
  });
}

}  // namespace

MTL_FUZZ_TARGET("idx", fuzz_idx)
