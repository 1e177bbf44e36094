#include "mtl/io/pickle_check.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "mtl/core/error.h"

namespace mtl {

namespace {

// How an opcode's argument is laid out in the stream (pickle protocols 0-5, as Python's pickletools lists them).
enum class Arg { kNone, kFixed, kLen1, kLen4, kLen8, kLine, kTwoLines, kFrame };

struct Layout {
  Arg arg = Arg::kNone;
  size_t bytes = 0;  // kFixed: the argument's size
};

bool layout_of(uint8_t op, Layout& l) {
  switch (op) {
    // no argument
    case '(': case '.': case '0': case '1': case '2': case 'N': case 'R': case 'a': case 'b': case 'd':
    case '}': case 'e': case 'l': case ']': case 'o': case 's': case 't': case ')': case 'u': case 'Q':
    case 0x81: case 0x85: case 0x86: case 0x87: case 0x88: case 0x89: case 0x8f: case 0x90: case 0x91:
    case 0x92: case 0x93: case 0x94: case 0x97: case 0x98:
      l = {Arg::kNone, 0};
      return true;
    case 'K': case 'q': case 'h': case 0x80: case 0x82: l = {Arg::kFixed, 1}; return true;
    case 'M': case 0x83: l = {Arg::kFixed, 2}; return true;
    case 'J': case 'r': case 'j': case 0x84: l = {Arg::kFixed, 4}; return true;
    case 'G': l = {Arg::kFixed, 8}; return true;
    case 'C': case 'U': case 0x8c: case 0x8a: l = {Arg::kLen1, 0}; return true;  // 1-byte length, then data
    case 'T': case 'X': case 'B': case 0x8b: l = {Arg::kLen4, 0}; return true;   // 4-byte length, then data
    case 0x8d: case 0x8e: case 0x96: l = {Arg::kLen8, 0}; return true;           // 8-byte length, then data
    case 0x95: l = {Arg::kFrame, 8}; return true;                                // FRAME: the frame's size
    case 'I': case 'L': case 'F': case 'S': case 'V': case 'P': case 'g': case 'p': l = {Arg::kLine, 0}; return true;
    case 'c': case 'i': l = {Arg::kTwoLines, 0}; return true;
    default: return false;
  }
}

uint64_t little_endian(const char* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

}  // namespace

void check_pickle(const char* data, size_t size, const std::string& where) {
  size_t pos = 0;
  auto need = [&](uint64_t n, const char* what, size_t at) {
    if (n > size - pos)
      throw Error(where, std::string("damaged pickle: ") + what + " at byte " + std::to_string(at) + " declares " +
                             std::to_string(n) + " bytes, " + std::to_string(size - pos) + " remain");
  };
  // LibTorch's unpickler grows its memo table to the index a PUT names (16 bytes an entry): a damaged
  // LONG_BINPUT of 1.8e9 made it allocate 30 GB. Picklers number memo entries 0, 1, 2, ..., one PUT opcode
  // (two bytes or more) each, so an index is always smaller than the record.
  auto check_memo_index = [&](uint64_t index, size_t at) {
    if (index >= size)
      throw Error(where, "damaged pickle: a memo index of " + std::to_string(index) + " at byte " +
                             std::to_string(at) + " in a record of " + std::to_string(size) + " bytes");
  };
  while (pos < size) {
    const size_t at = pos;
    const uint8_t op = static_cast<uint8_t>(data[pos++]);
    Layout l;
    if (!layout_of(op, l))
      throw Error(where, "damaged pickle: unknown opcode 0x" + std::string(1, "0123456789abcdef"[op >> 4]) +
                             std::string(1, "0123456789abcdef"[op & 15]) + " at byte " + std::to_string(at));
    switch (l.arg) {
      case Arg::kNone: break;
      case Arg::kFixed:
      case Arg::kFrame:
        need(l.bytes, "an argument", at);
        if (l.arg == Arg::kFrame) {
          const uint64_t frame = little_endian(data + pos, 8);
          pos += 8;
          need(frame, "a frame", at);
        } else {
          if (op == 'r') check_memo_index(little_endian(data + pos, 4), at);  // LONG_BINPUT
          pos += l.bytes;
        }
        break;
      case Arg::kLen1:
      case Arg::kLen4:
      case Arg::kLen8: {
        const size_t width = l.arg == Arg::kLen1 ? 1 : l.arg == Arg::kLen4 ? 4 : 8;
        need(width, "a length", at);
        const uint64_t n = little_endian(data + pos, width);
        pos += width;
        need(n, "a string or bytes value", at);
        pos += static_cast<size_t>(n);
        break;
      }
      case Arg::kLine:
      case Arg::kTwoLines:
        for (int lines = l.arg == Arg::kLine ? 1 : 2; lines > 0; --lines) {
          const void* nl = std::memchr(data + pos, '\n', size - pos);
          if (nl == nullptr) throw Error(where, "damaged pickle: an unterminated line at byte " + std::to_string(at));
          const size_t end = static_cast<size_t>(static_cast<const char*>(nl) - data);
          if (op == 'p') check_memo_index(std::strtoull(std::string(data + pos, end - pos).c_str(), nullptr, 10), at);
          pos = end + 1;
        }
        break;
    }
    if (op == '.') return;  // STOP
  }
  throw Error(where, "damaged pickle: no STOP opcode (the record is cut short)");
}

}  // namespace mtl
