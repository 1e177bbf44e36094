// Registry: a named table of component factories of one kind (backbone, head, loss, metric, ...).
// Components are added with one line each in an explicit list (see mtl/core/builtins.cpp), never by
// static initialisers, which a static library's linker silently drops. Unknown names throw mtl::Error
// listing the known names with a "did you mean" suggestion; registering a name twice is an error.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "mtl/core/error.h"

namespace mtl {

template <typename Entry>
class Registry {
 public:
  explicit Registry(std::string kind) : kind_(std::move(kind)) {}

  void add(const std::string& name, Entry entry) {
    if (entries_.count(name)) throw Error("", kind_ + " '" + name + "' is registered twice");
    entries_.emplace(name, std::move(entry));
  }

  bool contains(const std::string& name) const { return entries_.count(name) > 0; }

  /// Looks `name` up; `where` locates the reference for the error message (e.g. a config key).
  const Entry& get(const std::string& name, const std::string& where = "") const {
    auto it = entries_.find(name);
    if (it == entries_.end())
      throw Error(where, "unknown " + kind_ + " '" + name + "'" + did_you_mean(name, names()) +
                             "; known: " + join(names()));
    return it->second;
  }

  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& kv : entries_) out.push_back(kv.first);
    return out;
  }

  const std::string& kind() const { return kind_; }

 private:
  std::string kind_;
  std::map<std::string, Entry> entries_;
};

}  // namespace mtl
