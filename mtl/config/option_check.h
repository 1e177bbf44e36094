// One place for a component's option checks, two ways to report them. Each XOptions has a validate() that
// throws mtl::Error(key, expected) for its first bad value; these helpers give that error the location its
// reader needs:
//   validate_config(node, [&] { o.validate(); });             // from YAML: "file:line:col (path.key): ..."
//   validate_options("MlpHeadOptions", [&] { o.validate(); }); // from C++:  "MlpHeadOptions.key: ..."
#pragma once

#include <string>
#include <vector>

#include "mtl/config/config_node.h"
#include "mtl/core/error.h"

namespace mtl {

/// Runs `validate` and rethrows its mtl::Error(key, expected) at `key` of `node`.
template <typename F>
void validate_config(const ConfigNode& node, F&& validate) {
  try {
    validate();
  } catch (const Error& e) {
    node.fail(e.where(), e.message());
  }
}

/// Runs `validate` (and returns what it returns) and rethrows its mtl::Error(key, expected) as
/// "<options>.<key>: expected".
template <typename F>
auto validate_options(const std::string& options, F&& validate) -> decltype(validate()) {
  try {
    return validate();
  } catch (const Error& e) {
    throw Error(e.where().empty() ? options : options + "." + e.where(), e.message());
  }
}

/// Throws mtl::Error(key, ...) unless `value` is one of `allowed`, in the words of ConfigNode::choice.
inline void check_choice(const std::string& key, const std::string& value, const std::vector<std::string>& allowed) {
  for (const auto& a : allowed)
    if (a == value) return;
  throw Error(key, "unknown value '" + value + "'" + did_you_mean(value, allowed) + "; expected one of: " +
                       join(allowed));
}

}  // namespace mtl
