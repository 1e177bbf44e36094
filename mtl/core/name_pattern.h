// Parameter-name patterns, as `freeze:` and `optimizer.groups` use them to pick parameters by name.
//   "backbone"             the dotted prefix: backbone and everything under backbone.
//   "backbone.blocks.*"    a glob over the whole name: `*` matches any characters (dots included), `?` one
#pragma once

#include <string>
#include <vector>

namespace mtl {

/// True when `name` (e.g. "backbone.conv1.weight") is selected by `pattern` (see above).
bool name_matches(const std::string& pattern, const std::string& name);

/// True when any of `patterns` selects `name`.
bool name_matches_any(const std::vector<std::string>& patterns, const std::string& name);

}  // namespace mtl
