// User-facing errors: one exception type that carries *where* (file:line:col, a key path, a CLI flag)
// and *what was expected*. The CLI prints it as one line and exits with code 2.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace mtl {

class Error : public std::runtime_error {
 public:
  /// `where` is e.g. "configs/a.yaml:12:5 (trainer.epochs)" or "--set trainer.epochs"; may be empty.
  Error(std::string where, std::string what);

  const std::string& where() const { return where_; }
  const std::string& message() const { return what_; }

 private:
  std::string where_;
  std::string what_;
};

/// Throws mtl::Error(where, what) when `cond` is false.
inline void check(bool cond, const std::string& where, const std::string& what) {
  if (!cond) throw Error(where, what);
}

/// Edit distance (Levenshtein), used for "did you mean" suggestions.
size_t edit_distance(const std::string& a, const std::string& b);

/// Returns " (did you mean 'x'?)" for the closest candidate within a sensible distance, else "".
std::string did_you_mean(const std::string& name, const std::vector<std::string>& candidates);

/// "a, b, c" — for listing known names.
std::string join(const std::vector<std::string>& items, const std::string& sep = ", ");

/// A number as a message shows it: 1 -> "1", 0.25 -> "0.25", 1e-09 -> "1e-09" (6 significant digits).
std::string short_number(double v);

}  // namespace mtl
