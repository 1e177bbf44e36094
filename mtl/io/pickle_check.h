// A bounds check of pickle programs before LibTorch's unpickler runs them. LibTorch trusts the lengths a pickle
// declares (BINUNICODE, BINBYTES, ...) and reserves that much memory first: a damaged checkpoint declaring
// 3 GB made it allocate 3 GB (found by fuzzing, tests/fuzz/regressions/checkpoint/). This walks the opcodes
// of one pickle record (mtl/io/archive_check.h runs it on each record of a torch.save / torch::save archive)
// and checks that each declared length fits in what is left of the record, without building anything.
//
//   mtl::check_pickle(bytes, size, "record 'data.pkl'");  // throws mtl::Error naming the record
#pragma once

#include <cstddef>
#include <string>

namespace mtl {

/// Throws mtl::Error naming `where` when the pickle program is not well formed (unknown opcode, a length or
/// argument past the record's end, a memo index past it, no STOP). mtl/io/archive_check.h runs it on each
/// pickle record of an archive.
void check_pickle(const char* data, size_t size, const std::string& where);

}  // namespace mtl
