// Small text helpers for messages: the first line of an exception's text, a tensor shape as "[2, 3]".
#pragma once

#include <c10/util/ArrayRef.h>

#include <cstdint>
#include <string>

namespace mtl {

/// The text up to its first newline (LibTorch's messages go on with a backtrace).
std::string first_line(const std::string& text);

/// "[64, 3, 7, 7]"; "[]" for a scalar.
std::string shape_text(c10::ArrayRef<int64_t> shape);

}  // namespace mtl
