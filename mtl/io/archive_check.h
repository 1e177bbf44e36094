// Checks of a torch::save / OutputArchive zip archive before LibTorch loads it. torch::jit::load trusts what it
// reads: the lengths a pickle declares (mtl/io/pickle_check.h) and the TorchScript source of each module class
// (archive/code/*.py), which its parser compiles. A damaged source line ("stateameters__ = []" where
// "__parameters__ = []" was written) crashed LibTorch's type parser with SIGSEGV (found by fuzzing,
// tests/fuzz/regressions/checkpoint/). An OutputArchive writes module classes of one fixed shape:
//
//   class Module(Module):
//     __parameters__ = ["rng", ]
//     __buffers__ = []
//     __annotations__ = []
//     __annotations__["0x61000"] = __torch__.___torch_mangle_2.Module
//     position : List[int]
//
// so each source record must be exactly that shape (names, string keys and types of a small grammar)
// before the parser sees it.
//
//   mtl::check_archive_records("run/checkpoint.pt");  // throws mtl::Error naming the record and line
#pragma once

#include <cstddef>
#include <string>

namespace mtl {

/// Throws mtl::Error naming the record (callers add the file) when a pickle record (.pkl, .debug_pkl) is not a
/// well-formed pickle program or a code/*.py record is not an OutputArchive module class. Throws c10::Error
/// when `path` is not a zip archive at all.
void check_archive_records(const std::string& path);

/// The source check of one code record; `where` names it in the message ("... line 3: expected ...").
void check_module_source(const char* data, size_t size, const std::string& where);

}  // namespace mtl
