// IDX files, the format of MNIST and Fashion-MNIST: a 4-byte magic (0, 0, element type, number of
// dimensions), one big-endian uint32 per dimension, then the elements in row-major order, big-endian.
// Files may be gzip-compressed or plain; both are read the same way. Reading is strict: a wrong magic,
// an unknown element type, a short or overlong payload and a corrupt gzip stream are all mtl::Error
// naming the file.
//
//   at::Tensor images = mtl::read_idx("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz");
//   // uint8 [60000, 28, 28]
//   mtl::write_idx("cache/images-idx3-ubyte.gz", images, /*gzip=*/true);
//
// Element types: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace mtl {

/// What an IDX header declares, without the payload.
struct IdxHeader {
  at::ScalarType dtype = at::kByte;
  std::vector<int64_t> shape;
};

/// Reads only the header (cheap: a few bytes, also through gzip). Throws mtl::Error(path, ...) when the
/// file is missing or is not an IDX file.
IdxHeader read_idx_header(const std::string& path);

/// Reads a whole IDX file into a CPU tensor of the file's element type and shape.
at::Tensor read_idx(const std::string& path);

/// Writes `tensor` (one of the element types above, at least one dimension) as an IDX file, gzip-compressed
/// (fast level) when `gzip`. The file appears atomically: it is written to a temporary file in the same
/// directory, flushed to disk and renamed, so readers never see a partial file. The directory must exist.
void write_idx(const std::string& path, const at::Tensor& tensor, bool gzip = true);

}  // namespace mtl
