#include "mtl/io/safetensors.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "mtl/core/error.h"
#include "mtl/core/text.h"
#include "mtl/io/atomic_file.h"

namespace mtl {

// safetensors stores little-endian values and we copy bytes straight into tensors.
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "mtl's safetensors reader/writer assumes a little-endian host (it copies the file's bytes as they are)");
#endif

namespace {

using Json = nlohmann::ordered_json;  // ordered: metadata keeps the file's order

// The spec's own limit: a header is a table of contents, never near this size.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr const char* kMetadataKey = "__metadata__";
constexpr char kHeaderStart = '{';  // the header is one JSON object

struct DtypeName {
  const char* name;
  at::ScalarType type;
};
// Every dtype both formats share on CPU (safetensors has no complex types, LibTorch 1.13 no unsigned > 8 bits).
constexpr DtypeName kDtypes[] = {
    {"BOOL", at::kBool},  {"U8", at::kByte},   {"I8", at::kChar},      {"I16", at::kShort}, {"I32", at::kInt},
    {"I64", at::kLong},   {"F16", at::kHalf},  {"BF16", at::kBFloat16}, {"F32", at::kFloat}, {"F64", at::kDouble},
};

std::string supported_dtypes() {
  std::string s;
  for (const auto& d : kDtypes) s += std::string(s.empty() ? "" : ", ") + d.name;
  return s;
}

// A name in quotes, with control characters escaped so that every message stays on one line.
std::string quote_name(const std::string& s) {
  std::string out = "'";
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "'";
}

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

}  // namespace

std::string safetensors_dtype(at::ScalarType type) {
  for (const auto& d : kDtypes)
    if (type == d.type) return d.name;
  return "";
}

namespace {

// --------------------------------------------------------------------------------------------- reading

struct Entry {
  std::string name;
  at::ScalarType type;
  std::string dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
};

class HeaderParser {
 public:
  HeaderParser(const std::string& path, uint64_t data_size) : path_(path), data_size_(data_size) {}

  [[noreturn]] void fail(const std::string& tensor, const std::string& what) const {
    throw Error(path_, "tensor " + quote_name(tensor) + ": " + what);
  }

  Entry parse_entry(const std::string& name, const Json& j) const {
    if (!j.is_object()) fail(name, "header entry is not an object with dtype, shape and data_offsets");
    Entry e;
    e.name = name;
    for (const char* key : {"dtype", "shape", "data_offsets"})
      if (!j.contains(key)) fail(name, std::string("header entry lacks \"") + key + "\"");

    const Json& dtype = j.at("dtype");
    if (!dtype.is_string()) fail(name, "\"dtype\" is not a string");
    e.dtype = dtype.get<std::string>();
    e.type = parse_dtype(name, e.dtype);

    const Json& shape = j.at("shape");
    if (!shape.is_array()) fail(name, "\"shape\" is not an array of dimensions");
    for (const Json& d : shape) e.shape.push_back(parse_dim(name, d));

    const Json& offs = j.at("data_offsets");
    if (!offs.is_array() || offs.size() != 2 || !offs[0].is_number_unsigned() || !offs[1].is_number_unsigned())
      fail(name, "\"data_offsets\" is not [begin, end] with two non-negative integers");
    e.begin = offs[0].get<uint64_t>();
    e.end = offs[1].get<uint64_t>();
    if (e.begin > e.end)
      fail(name, "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "] have begin > end");
    if (e.end > data_size_)
      fail(name, "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                     "] are out of range: the data section has " + std::to_string(data_size_) +
                     " bytes (truncated file?)");

    // numel * element size, without overflow (the dims come from the file).
    uint64_t bytes = c10::elementSize(e.type);
    bool zero = std::find(e.shape.begin(), e.shape.end(), 0) != e.shape.end();
    bool overflow = false;
    if (zero) {
      bytes = 0;
    } else {
      for (int64_t d : e.shape) overflow |= __builtin_mul_overflow(bytes, static_cast<uint64_t>(d), &bytes);
    }
    if (overflow || bytes != e.end - e.begin)
      fail(name, "shape " + shape_text(e.shape) + " of dtype " + e.dtype + " needs " +
                     (overflow ? std::string("more than 2^64") : std::to_string(bytes)) +
                     " bytes but its data_offsets span " + std::to_string(e.end - e.begin) +
                     " (shape/dtype mismatch)");
    return e;
  }

 private:
  at::ScalarType parse_dtype(const std::string& name, const std::string& dtype) const {
    for (const auto& d : kDtypes)
      if (dtype == d.name) return d.type;
    // Valid safetensors dtypes that a LibTorch 1.13 tensor cannot hold.
    if (dtype == "U16" || dtype == "U32" || dtype == "U64" || dtype.rfind("F8_", 0) == 0 || dtype == "F4" ||
        dtype.rfind("F6_", 0) == 0 || dtype == "C64")
      fail(name, "dtype " + dtype + " cannot be held by LibTorch 1.13 (supported: " + supported_dtypes() + ")");
    fail(name, "unknown dtype " + quote_name(dtype) + " (supported: " + supported_dtypes() + ")");
  }

  int64_t parse_dim(const std::string& name, const Json& d) const {
    if (!d.is_number() || d.is_number_float())
      fail(name, "shape has a non-integer dimension " + one_line(d.dump()));
    if (!d.is_number_unsigned()) fail(name, "shape has a negative dimension " + d.dump());
    uint64_t v = d.get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail(name, "shape has a dimension too large for a tensor: " + std::to_string(v));
    return static_cast<int64_t>(v);
  }

  const std::string& path_;
  uint64_t data_size_;
};

// The header's JSON text and where the data section lies.
struct HeaderText {
  std::string json;
  uint64_t data_start = 0;  // offset of the data section in the file
  uint64_t data_size = 0;   // bytes from data_start to the end of the file
};

// Reads the 8-byte little-endian length prefix and the header it announces; `in` is left at the data section.
HeaderText read_header_text(std::ifstream& in, const std::string& path) {
  const uint64_t file_size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  if (file_size < 8)
    throw Error(path, "file is too short to be a safetensors file (" + std::to_string(file_size) +
                          " bytes; the header length alone takes 8)");
  unsigned char len_bytes[8];
  in.read(reinterpret_cast<char*>(len_bytes), 8);
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | len_bytes[i];
  if (header_size > kMaxHeaderBytes)
    throw Error(path, "header too large: " + std::to_string(header_size) + " bytes (the limit is " +
                          std::to_string(kMaxHeaderBytes) + "; not a safetensors file?)");
  if (header_size > file_size - 8)
    throw Error(path, "header too large: " + std::to_string(header_size) + " bytes but the file has only " +
                          std::to_string(file_size - 8) + " after the length (truncated, or not a safetensors file?)");
  HeaderText h;
  h.json.assign(header_size, '\0');
  in.read(h.json.data(), static_cast<std::streamsize>(header_size));
  if (!in) throw Error(path, "cannot read the safetensors header");
  h.data_start = 8 + header_size;
  h.data_size = file_size - h.data_start;
  return h;
}

// Parses the header into a JSON object whose top-level keys are all distinct.
Json parse_header_json(const std::string& path, const std::string& header) {
  if (header.empty() || header[0] != kHeaderStart)
    throw Error(path, std::string("safetensors header does not start with '") + kHeaderStart +
                          "' (not a safetensors file?)");
  // nlohmann keeps the last of duplicate keys; the parser callback sees them all.
  std::string duplicate;
  std::set<std::string> seen;
  Json j;
  try {
    j = Json::parse(header, [&](int depth, Json::parse_event_t event, Json& parsed) {
      if (depth == 1 && event == Json::parse_event_t::key && duplicate.empty()) {
        std::string key = parsed.get<std::string>();
        if (!seen.insert(key).second) duplicate = key;
      }
      return true;
    });
  } catch (const Json::exception& e) {
    throw Error(path, "safetensors header is not valid JSON (" + one_line(e.what()) + ")");
  }
  if (!j.is_object()) throw Error(path, "safetensors header is not a JSON object");
  if (!duplicate.empty())
    throw Error(path, "tensor " + quote_name(duplicate) + ": the name appears twice in the header");
  return j;
}

// The "__metadata__" entry: a map of strings, appended to `out` in the file's order.
void read_metadata(const std::string& path, const Json& metadata,
                   std::vector<std::pair<std::string, std::string>>& out) {
  if (!metadata.is_object()) throw Error(path, "\"__metadata__\" is not an object of strings");
  for (auto m = metadata.begin(); m != metadata.end(); ++m) {
    if (!m.value().is_string())
      throw Error(path, "metadata value of key " + quote_name(m.key()) + " is not a string (" +
                            std::string(m.value().type_name()) + ")");
    out.emplace_back(m.key(), m.value().get<std::string>());
  }
}

// Every entry of the header, in the header's order: the tensors' entries (checked one by one) are returned and
// the metadata goes into `metadata`.
std::vector<Entry> read_entries(const std::string& path, const Json& header, const HeaderParser& parser,
                                std::vector<std::pair<std::string, std::string>>& metadata) {
  std::vector<Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == kMetadataKey)
      read_metadata(path, it.value(), metadata);
    else
      entries.push_back(parser.parse_entry(it.key(), it.value()));
  }
  return entries;
}

// The spec demands that the tensors tile the data section: no overlaps, no holes, nothing after the last.
// Sorts `entries` by their offsets, the order in which the data section holds them.
void check_tiling(const std::string& path, const HeaderParser& parser, std::vector<Entry>& entries,
                  uint64_t data_size) {
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expected = 0;
  const Entry* prev = nullptr;
  for (const Entry& e : entries) {
    if (e.begin < expected)
      parser.fail(e.name, "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                              "] overlap tensor " + quote_name(prev->name) + " (which ends at " +
                              std::to_string(expected) + ")");
    if (e.begin > expected) {
      const std::string before =
          prev ? "the previous tensor " + quote_name(prev->name) + " ends" : std::string("the data section starts");
      parser.fail(e.name, "data_offsets begin at " + std::to_string(e.begin) + " but " + before + " at " +
                              std::to_string(expected) + ": a hole in the data section (not allowed)");
    }
    expected = e.end;
    prev = &e;
  }
  if (expected != data_size)
    throw Error(path, "the data section has " + std::to_string(data_size) + " bytes but its tensors end at " +
                          std::to_string(expected) + ": a hole of unused bytes at the end (not allowed)" +
                          (prev ? " after tensor " + quote_name(prev->name) : std::string()));
}

// Reads the bytes of one tensor from where `in` stands (the tensors are tiled in order, so reading them one
// after another is one sequential read of the data section).
at::Tensor read_tensor(std::istream& in, const std::string& path, const HeaderParser& parser, const Entry& e) {
  at::Tensor t = at::empty(e.shape, at::TensorOptions().dtype(e.type));
  const uint64_t bytes = e.end - e.begin;
  if (bytes > 0) {
    in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(bytes));
    if (!in)
      throw Error(path, "tensor " + quote_name(e.name) + ": cannot read its data (file changed while reading?)");
  }
  // A torch bool must be 0 or 1; any other byte would be undefined behaviour later.
  if (e.type == at::kBool && bytes > 0) {
    const auto* p = static_cast<const unsigned char*>(t.data_ptr());
    for (uint64_t i = 0; i < bytes; ++i)
      if (p[i] > 1)
        parser.fail(e.name, "BOOL data holds byte " + std::to_string(p[i]) + " (only 0 and 1 are valid)");
  }
  return t;
}

}  // namespace

SafetensorsContents read_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw Error(path, std::string("cannot open safetensors file: ") + std::strerror(errno));
  const HeaderText header = read_header_text(in, path);
  const Json j = parse_header_json(path, header.json);

  SafetensorsContents out;
  HeaderParser parser(path, header.data_size);
  std::vector<Entry> entries = read_entries(path, j, parser, out.metadata);
  check_tiling(path, parser, entries, header.data_size);

  in.seekg(static_cast<std::streamoff>(header.data_start));
  for (const Entry& e : entries) out.tensors.emplace_back(e.name, read_tensor(in, path, parser, e));
  return out;
}

// --------------------------------------------------------------------------------------------- writing

void write_safetensors(const std::string& path, const NamedTensors& tensors,
                       const std::vector<std::pair<std::string, std::string>>& metadata) {
  Json header = Json::object();
  if (!metadata.empty()) {
    Json m = Json::object();
    for (const auto& [k, v] : metadata) {
      if (m.contains(k)) throw Error(path, "metadata key " + quote_name(k) + " is given twice");
      m[k] = v;
    }
    header[kMetadataKey] = std::move(m);
  }
  std::vector<at::Tensor> data;
  std::set<std::string> names;
  uint64_t offset = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, tensor] = tensors[i];
    if (name.empty()) throw Error(path, "tensor #" + std::to_string(i) + " has an empty name");
    if (name.rfind(kMetadataKey, 0) == 0)
      throw Error(path, "tensor " + quote_name(name) + ": names beginning \"__metadata__\" are reserved");
    if (!names.insert(name).second) throw Error(path, "tensor " + quote_name(name) + ": the name is given twice");
    if (!tensor.defined()) throw Error(path, "tensor " + quote_name(name) + " is undefined");
    const std::string dtype = safetensors_dtype(tensor.scalar_type());
    if (dtype.empty() || tensor.is_quantized())
      throw Error(path, "tensor " + quote_name(name) + " has dtype " + c10::toString(tensor.scalar_type()) +
                            ", which safetensors cannot hold (supported: " + supported_dtypes() + ")");
    at::Tensor t = tensor.detach().to(at::kCPU).contiguous();
    const uint64_t bytes = t.nbytes();
    header[name] = {{"dtype", dtype}, {"shape", t.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    data.push_back(std::move(t));
  }
  std::string text;
  try {
    text = header.dump(-1, ' ', false, Json::error_handler_t::strict);
  } catch (const Json::exception& e) {
    throw Error(path, "a tensor name or metadata string is not valid UTF-8 (" + one_line(e.what()) + ")");
  }
  // Pad with spaces so that the data section starts 8-byte aligned (the length prefix is 8 bytes).
  text.append((8 - text.size() % 8) % 8, ' ');

  write_atomic(path, [&](const std::string& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(path, std::string("cannot write file: ") + std::strerror(errno));
    errno = 0;
    unsigned char len_bytes[8];
    uint64_t n = text.size();
    for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<unsigned char>(n >> (8 * i));
    out.write(reinterpret_cast<const char*>(len_bytes), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const at::Tensor& t : data)
      if (t.nbytes() > 0) out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
    out.flush();
    if (!out)
      throw Error(path, errno != 0 ? std::string("cannot write file: ") + std::strerror(errno)
                                   : std::string("cannot write file (disk full?)"));
  });
}

}  // namespace mtl
