#include "mtl/io/archive_check.h"

#include <caffe2/serialize/inline_container.h>

#include <string_view>

#include "mtl/core/error.h"
#include "mtl/io/pickle_check.h"

namespace mtl {

namespace {

bool ends_with(const std::string& s, std::string_view tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

bool is_identifier_start(char c) { return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_identifier_char(char c) { return is_identifier_start(c) || (c >= '0' && c <= '9'); }

// A cursor over one source line; each take_* consumes a token and says whether it was there.
struct Line {
  std::string_view s;
  size_t pos = 0;

  bool done() const { return pos == s.size(); }
  bool take(std::string_view token) {
    if (s.substr(pos, token.size()) != token) return false;
    pos += token.size();
    return true;
  }
  bool take_identifier(std::string_view* out = nullptr) {
    if (pos >= s.size() || !is_identifier_start(s[pos])) return false;
    const size_t start = pos;
    while (pos < s.size() && is_identifier_char(s[pos])) ++pos;
    if (out) *out = s.substr(start, pos - start);
    return true;
  }
  // "..." holding printable characters other than '"' and '\\' (the writer's keys are names and addresses).
  bool take_string() {
    if (!take("\"")) return false;
    while (pos < s.size() && s[pos] != '"') {
      const unsigned char c = static_cast<unsigned char>(s[pos]);
      if (c < 0x20 || c >= 0x7f || c == '\\') return false;
      ++pos;
    }
    return take("\"");
  }
  // A type: a primitive, a container of types ("Dict[str, Tensor]") or a module class of the archive.
  bool take_type(int depth = 0) {
    if (depth > 4) return false;
    if (take("__torch__.")) {  // __torch__.___torch_mangle_7.Module or __torch__.Module
      std::string_view part;
      if (!take_identifier(&part)) return false;
      if (part == "Module") return true;
      return part.substr(0, 15) == "___torch_mangle" && take(".Module");
    }
    std::string_view name;
    if (!take_identifier(&name)) return false;
    if (name == "Tensor" || name == "int" || name == "float" || name == "str" || name == "bool") return true;
    if (name != "List" && name != "Dict" && name != "Optional" && name != "Tuple") return false;
    if (!take("[") || !take_type(depth + 1)) return false;
    while (take(", "))
      if (!take_type(depth + 1)) return false;
    return take("]");
  }
  // [] or ["a", "b", ]
  bool take_name_list() {
    if (!take("[")) return false;
    while (!take("]"))
      if (!take_string() || !take(", ")) return false;
    return true;
  }
};

// One class-body line: a parameter or buffer list, an annotation table entry or an attribute declaration.
bool is_body_line(std::string_view text) {
  Line line{text};
  if (!line.take("  ")) return false;
  if (line.take("__parameters__ = ") || line.take("__buffers__ = ")) return line.take_name_list() && line.done();
  if (line.take("__annotations__")) {
    if (line.take(" = []")) return line.done();
    return line.take("[") && line.take_string() && line.take("] = ") && line.take_type() && line.done();
  }
  std::string_view name;
  if (!line.take_identifier(&name) || name.substr(0, 2) == "__") return false;
  return line.take(" : ") && line.take_type() && line.done();
}

}  // namespace

void check_module_source(const char* data, size_t size, const std::string& where) {
  const std::string_view text(data, size);
  size_t start = 0;
  int number = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(start, end - start);
    ++number;
    const bool ok = number == 1 ? line == "class Module(Module):" : is_body_line(line);
    if (!ok)
      throw Error(where, "damaged module source, line " + std::to_string(number) +
                             (number == 1 ? ": expected 'class Module(Module):'"
                                          : ": expected a parameter, buffer, annotation or attribute declaration"));
    start = end + 1;
  }
  if (number == 0) throw Error(where, "damaged module source: the record is empty");
}

void check_archive_records(const std::string& path) {
  caffe2::serialize::PyTorchStreamReader reader(path);
  for (const std::string& name : reader.getAllRecords()) {
    const bool pickle = ends_with(name, ".pkl") || ends_with(name, ".debug_pkl");
    const bool source = name.rfind("code/", 0) == 0 && ends_with(name, ".py");
    if (!pickle && !source) continue;
    auto [ptr, n] = reader.getRecord(name);
    const char* bytes = static_cast<const char*>(ptr.get());
    if (pickle) check_pickle(bytes, n, "record '" + name + "'");
    else check_module_source(bytes, n, "record '" + name + "'");
  }
}

}  // namespace mtl
