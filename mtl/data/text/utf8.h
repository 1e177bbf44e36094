// UTF-8 validation for text data: text datasets reject a line that is not valid UTF-8 and name the byte
// offset of the first bad sequence, since tokenizers (and JSON) assume valid UTF-8.
//   size_t bad = mtl::find_invalid_utf8(line);   // std::string::npos when valid
#pragma once

#include <cstddef>
#include <string>

namespace mtl {

/// Byte offset of the first invalid UTF-8 sequence in `text`, or std::string::npos when all of it is valid.
/// Invalid: a stray continuation byte, a truncated sequence, an overlong encoding, a UTF-16 surrogate
/// (U+D800..U+DFFF) or a code point above U+10FFFF.
size_t find_invalid_utf8(const std::string& text);

}  // namespace mtl
