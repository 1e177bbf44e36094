// A bounds check of pickle programs before LibTorch's unpickler runs them. LibTorch trusts the lengths a pickle
// declares (BINUNICODE, BINBYTES, ...) and reserves that much memory first: a damaged checkpoint declaring
// 3 GB made it allocate 3 GB (found by fuzzing, tests/fuzz/regressions/checkpoint/). This walks the opcodes
// of every .pkl record of a zip archive written by torch.save / torch::save and checks that each declared
// length fits in what is left of the record, without building anything.
//
//   mtl::check_pickle_records("run/checkpoint.pt");  // throws mtl::Error naming the record
#pragma once

#include <cstddef>
#include <string>

namespace mtl {

/// Throws mtl::Error naming the record (callers add the file) when a .pkl record of the archive is not a well-formed pickle program
/// (unknown opcode, a length or argument past the record's end, no STOP). Throws c10::Error when `path` is
/// not a zip archive at all.
void check_pickle_records(const std::string& path);

/// The same check of one pickle program; `where` names it in the message.
void check_pickle(const char* data, size_t size, const std::string& where);

}  // namespace mtl
