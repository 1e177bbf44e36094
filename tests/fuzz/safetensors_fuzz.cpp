// safetensors files from other tools: the 8-byte header length, the JSON header (dtypes, shapes, offsets,
// metadata) and the data section.
#include "fuzz_util.h"
#include "mtl/io/safetensors.h"

namespace {

int fuzz_safetensors(const uint8_t* data, size_t size) {
  const std::string path = mtl_fuzz::input_file(data, size, "model.safetensors");
  return mtl_fuzz::expect_mtl_errors_only([&] { mtl::read_safetensors(path); });
}

}  // namespace

MTL_FUZZ_TARGET("safetensors", fuzz_safetensors)
