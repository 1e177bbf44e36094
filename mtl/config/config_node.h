// Typed, location-aware access to a YAML configuration.
//
// A Config is one loaded YAML file plus `--set key.path=value` overrides. Components read their options
// through ConfigNode views: every read is type-checked, errors name file:line:col and the dotted key path,
// every read value (defaults included) is recorded into the *resolved* config that is saved with each run,
// and after all components have read their options `check_unused()` rejects every key nobody asked for,
// with a "did you mean" suggestion taken from the keys that were asked for at the same place.
//
//   mtl::Config cfg = mtl::Config::load("configs/multi_fashion.yaml", {"trainer.epochs=3"});
//   mtl::ConfigNode t = cfg.root().child("trainer");
//   int64_t epochs = t.get<int64_t>("epochs", 10);
//   t.check(epochs > 0, "epochs", "expected a positive integer");
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "mtl/core/error.h"

namespace mtl {

class ConfigNode;

namespace detail {
struct ConfigState;
}

class Config {
 public:
  /// Loads `path` and applies overrides of the form "a.b.c=value" (value parsed as YAML).
  static Config load(const std::string& path, const std::vector<std::string>& overrides = {});
  /// Parses YAML text; `name` stands in for the file name in messages.
  static Config from_string(const std::string& yaml, const std::string& name = "<string>",
                            const std::vector<std::string>& overrides = {});

  ConfigNode root() const;
  const std::string& file() const;

  /// Throws mtl::Error for the first key (in document order) that no component read.
  void check_unused() const;
  /// The resolved configuration: every value read, defaults included, in a form `load` accepts again.
  YAML::Node resolved() const;
  std::string resolved_yaml() const;

 private:
  std::shared_ptr<detail::ConfigState> state_;
};

/// A view of one map (or scalar-shorthand) node within a Config.
class ConfigNode {
 public:
  /// An empty view, only to be assigned to (plain option structs hold nodes for their components).
  ConfigNode() = default;
  /// `anchor` is the node whose position messages report (defaults to `node`).
  ConfigNode(std::shared_ptr<detail::ConfigState> state, YAML::Node node, std::string path,
             YAML::Node anchor = YAML::Node(YAML::NodeType::Undefined));

  const std::string& path() const { return path_; }
  /// "file:line:col (path)" for this node, or the key `key` inside it.
  std::string where(const std::string& key = "") const;

  bool has(const std::string& key) const;
  bool is_scalar() const;
  bool is_sequence() const;
  bool is_map() const;
  bool defined() const;

  template <typename T>
  T get(const std::string& key, const T& fallback) const;
  template <typename T>
  T require(const std::string& key) const;

  /// A string from a fixed set, with "did you mean".
  std::string choice(const std::string& key, const std::string& fallback,
                     const std::vector<std::string>& allowed) const;

  /// Child map (an absent child is an empty map, so optional sections read defaults).
  ConfigNode child(const std::string& key) const;
  /// Child that may be written as a scalar shorthand: `backbone: lenet` == `backbone: {type: lenet}`.
  ConfigNode component(const std::string& key, const std::string& default_type = "") const;
  /// For the nodes of a sequence: element views "key[i]"; scalar elements become {type: value}.
  std::vector<ConfigNode> components(const std::string& key,
                                     const std::vector<std::string>& fallback = {}) const;
  /// Keys of a map child in document order (e.g. task names).
  std::vector<std::string> keys(const std::string& key) const;

  /// Throws mtl::Error located at `key` (or at this node when empty) unless `cond`.
  void check(bool cond, const std::string& key, const std::string& expected) const;
  [[noreturn]] void fail(const std::string& key, const std::string& what) const;

  /// The `type` of a component node (scalar shorthand or map with `type`).
  std::string type() const;

 private:
  YAML::Node lookup(const std::string& key) const;  // marks key as known and used
  void record(const std::string& key, const YAML::Node& value) const;
  std::string child_path(const std::string& key) const;

  std::shared_ptr<detail::ConfigState> state_;
  YAML::Node node_;
  YAML::Node anchor_;
  std::string path_;
};

/// A key that holds one string or a list of strings (`strip_prefix: module` or `strip_prefix: [a, b]`).
struct StringOrList {
  bool is_list = false;
  std::vector<std::string> items;
};
/// Reads such a key (`fallback` when absent); else an error at `key` saying "expected <expected>".
StringOrList string_or_list(const ConfigNode& n, const std::string& key, const std::string& fallback,
                            const std::string& expected);

// Range helpers used by option parsers.
template <typename T>
inline T positive(const ConfigNode& n, const std::string& key, const T& fallback) {
  T v = n.get<T>(key, fallback);
  n.check(v > 0, key, "expected a positive number, got " + std::to_string(v));
  return v;
}
template <typename T>
inline T non_negative(const ConfigNode& n, const std::string& key, const T& fallback) {
  T v = n.get<T>(key, fallback);
  n.check(v >= 0, key, "expected a number >= 0, got " + std::to_string(v));
  return v;
}
template <typename T>
inline T in_range(const ConfigNode& n, const std::string& key, const T& fallback, T lo, T hi) {
  T v = n.get<T>(key, fallback);
  n.check(v >= lo && v <= hi, key,
          "expected a value in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
              std::to_string(v));
  return v;
}

}  // namespace mtl
