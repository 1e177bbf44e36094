#include "mtl/core/name_pattern.h"

namespace mtl {

namespace {

// Iterative glob match with backtracking to the last `*` (linear in practice, no recursion).
bool glob_match(const std::string& p, const std::string& s) {
  size_t i = 0, j = 0, star = std::string::npos, mark = 0;
  while (j < s.size()) {
    if (i < p.size() && (p[i] == '?' || p[i] == s[j])) {
      ++i;
      ++j;
    } else if (i < p.size() && p[i] == '*') {
      star = i++;
      mark = j;
    } else if (star != std::string::npos) {
      i = star + 1;
      j = ++mark;
    } else {
      return false;
    }
  }
  while (i < p.size() && p[i] == '*') ++i;
  return i == p.size();
}

}  // namespace

bool name_matches(const std::string& pattern, const std::string& name) {
  if (pattern.find_first_of("*?") != std::string::npos) return glob_match(pattern, name);
  if (name.size() < pattern.size() || name.compare(0, pattern.size(), pattern) != 0) return false;
  return name.size() == pattern.size() || name[pattern.size()] == '.';
}

bool name_matches_any(const std::vector<std::string>& patterns, const std::string& name) {
  for (const auto& p : patterns)
    if (name_matches(p, name)) return true;
  return false;
}

}  // namespace mtl
