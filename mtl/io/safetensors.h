// safetensors files (https://github.com/huggingface/safetensors), the weight format of the Python world:
// mtl reads them to initialise models from pretrained weights and writes them to export trained models.
// Files come from elsewhere, so reading checks every name, dtype, shape and offset and rejects anything the
// spec does not allow, naming the file and the tensor, instead of handing a model garbage.
//   mtl::write_safetensors("model.safetensors", {{"fc.weight", w}}, {{"format", "mtl"}});
//   for (auto& [name, t] : mtl::read_safetensors("model.safetensors").tensors) ...
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <utility>
#include <vector>

namespace mtl {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

struct SafetensorsContents {
  NamedTensors tensors;                                       // in the order of their data offsets
  std::vector<std::pair<std::string, std::string>> metadata;  // the "__metadata__" string map, if any
};

/// Reads a whole .safetensors file (CPU tensors, owning their memory). Throws mtl::Error(path, "...") with a
/// one-line message naming the tensor for anything malformed.
SafetensorsContents read_safetensors(const std::string& path);

/// Writes tensors (made contiguous, CPU) and optional string metadata; atomic (use write_atomic / the helpers in
/// mtl/io/atomic_file.h), so an existing file is never left half-written.
void write_safetensors(const std::string& path, const NamedTensors& tensors,
                       const std::vector<std::pair<std::string, std::string>>& metadata = {});

/// The safetensors name of a dtype ("F32", "BF16", ...), or "" when safetensors cannot hold it.
std::string safetensors_dtype(at::ScalarType type);

}  // namespace mtl
