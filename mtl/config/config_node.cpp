#include "mtl/config/config_node.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace mtl {
namespace detail {

struct ConfigState {
  std::string file;
  YAML::Node root;
  YAML::Node resolved{YAML::NodeType::Map};
  std::set<std::string> overridden;                         // dotted paths set by --set
  std::map<std::string, std::vector<std::string>> known;    // parent path -> keys asked for
  std::set<std::string> used;                               // full paths that were read

  void remember(const std::string& parent, const std::string& key) {
    auto& v = known[parent];
    for (const auto& k : v)
      if (k == key) return;
    v.push_back(key);
  }

  std::string where(const std::string& path, const YAML::Node& node) const {
    // An override anywhere on the path wins: the value came from the command line.
    std::string p = path;
    while (!p.empty()) {
      if (overridden.count(p)) return "--set " + p + (p == path ? "" : " (" + path + ")");  // names the key within
      auto dot = p.find_last_of(".[");
      if (dot == std::string::npos) break;
      p = p.substr(0, dot);
    }
    std::ostringstream os;
    os << file;
    if (node.IsDefined()) {
      auto m = node.Mark();
      if (m.line >= 0) os << ":" << (m.line + 1) << ":" << (m.column + 1);
    }
    if (!path.empty()) os << " (" << path << ")";
    return os.str();
  }
};

}  // namespace detail

namespace {

std::string describe(const YAML::Node& n) {
  if (!n.IsDefined() || n.IsNull()) return "nothing";
  if (n.IsScalar()) return "'" + n.Scalar() + "'";
  if (n.IsSequence()) return "a list";
  return "a map";
}

YAML::Node parse_text(const std::string& text, const std::string& name) {
  try {
    YAML::Node n = YAML::Load(text);
    if (n.IsNull()) n = YAML::Node(YAML::NodeType::Map);
    if (!n.IsMap()) throw Error(name, "expected a YAML map at the top level, got " + describe(n));
    return n;
  } catch (const YAML::ParserException& e) {
    std::ostringstream os;
    os << name << ":" << (e.mark.line + 1) << ":" << (e.mark.column + 1);
    throw Error(os.str(), "malformed YAML: " + e.msg);
  }
}

// Paths name a value in the document: "data.labels.a", "model.backbone.stems[0].type". A key that holds '.',
// '[', ']' or '"' (a CSV column "temp[C]", a label "a.b") is one segment in double quotes, quotes doubled:
// data.labels."temp[C]".kind.
std::string path_segment(const std::string& key) {
  if (!key.empty() && key.find_first_of(".[]\"") == std::string::npos) return key;
  std::string out = "\"";
  for (char c : key) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// The segments of a path (split at dots outside quotes; a quoted segment keeps its quotes).
std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::string cur;
  bool quoted = false;
  for (char c : path) {
    if (c == '"') quoted = !quoted;  // a doubled quote leaves and re-enters: still inside
    if (c == '.' && !quoted) {
      parts.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  parts.push_back(cur);
  return parts;
}

// The key of one segment (unquoted) and its list indices ("stems[0]" -> "stems", {0}). A suffix that is not
// a list of [digits] is part of the key.
std::string segment_key(const std::string& segment, std::vector<size_t>& indices) {
  indices.clear();
  std::string key;
  size_t i = 0;
  if (!segment.empty() && segment[0] == '"') {
    for (i = 1; i < segment.size(); ++i) {
      if (segment[i] != '"') {
        key += segment[i];
      } else if (i + 1 < segment.size() && segment[i + 1] == '"') {
        key += '"';
        ++i;
      } else {
        ++i;
        break;
      }
    }
  } else {
    i = std::min(segment.find('['), segment.size());
    key = segment.substr(0, i);
  }
  for (size_t pos = i; pos < segment.size();) {
    const size_t close = segment.find(']', pos);
    const std::string digits = close == std::string::npos ? "" : segment.substr(pos + 1, close - pos - 1);
    if (segment[pos] != '[' || digits.empty() || digits.size() > 9 ||
        digits.find_first_not_of("0123456789") != std::string::npos) {
      indices.clear();
      return segment;  // not an index suffix after all
    }
    indices.push_back(std::stoul(digits));
    pos = close + 1;
  }
  return key;
}

void apply_override(detail::ConfigState& st, const std::string& arg) {
  auto eq = arg.find('=');
  if (eq == std::string::npos || eq == 0)
    throw Error("--set " + arg, "expected key.path=value, e.g. --set trainer.epochs=3");
  std::string path = arg.substr(0, eq);
  std::string text = arg.substr(eq + 1);
  auto parts = split_path(path);
  for (auto& p : parts) {
    if (p.empty()) throw Error("--set " + arg, "empty component in key path '" + path + "'");
    std::vector<size_t> indices;
    p = segment_key(p, indices);
    if (!indices.empty())
      throw Error("--set " + arg, "cannot set one element of a list; set the whole list (key=[...])");
  }
  YAML::Node value;
  try {
    value = text.empty() ? YAML::Node() : YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw Error("--set " + path, "value '" + text + "' is not valid YAML: " + e.msg);
  }
  // Walk with fresh handles: assigning to a yaml-cpp handle writes through it, so never reassign one.
  std::vector<YAML::Node> chain{st.root};
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    {
      YAML::Node probe = chain.back()[parts[i]];
      if (!probe.IsDefined() || probe.IsNull()) chain.back()[parts[i]] = YAML::Node(YAML::NodeType::Map);
    }
    YAML::Node next = chain.back()[parts[i]];
    if (!next.IsMap()) {
      std::string prefix;
      for (size_t j = 0; j <= i; ++j) prefix += (j ? "." : "") + parts[j];
      throw Error("--set " + path, "'" + prefix + "' is not a map, cannot set a key inside it");
    }
    chain.push_back(next);
  }
  chain.back()[parts.back()] = value;
  st.overridden.insert(path);
}

}  // namespace

// ---------------------------------------------------------------- Config

Config Config::from_string(const std::string& yaml, const std::string& name,
                           const std::vector<std::string>& overrides) {
  Config c;
  c.state_ = std::make_shared<detail::ConfigState>();
  c.state_->file = name;
  c.state_->root = parse_text(yaml, name);
  for (const auto& o : overrides) apply_override(*c.state_, o);
  return c;
}

Config Config::load(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path, "cannot open config file");
  std::stringstream ss;
  ss << in.rdbuf();
  return from_string(ss.str(), path, overrides);
}

ConfigNode Config::root() const { return ConfigNode(state_, state_->root, ""); }
const std::string& Config::file() const { return state_->file; }
YAML::Node Config::resolved() const { return state_->resolved; }

std::string Config::resolved_yaml() const {
  YAML::Emitter out;
  out << state_->resolved;
  return std::string(out.c_str()) + "\n";
}

namespace {
void check_unused_rec(const detail::ConfigState& st, const YAML::Node& node, const std::string& path) {
  if (node.IsMap()) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      std::string key = it->first.Scalar();
      std::string p = path.empty() ? path_segment(key) : path + "." + path_segment(key);
      auto kn = st.known.find(path);
      std::vector<std::string> cands = kn == st.known.end() ? std::vector<std::string>{} : kn->second;
      // A known key set to null (`init: ~`, --set model.init=null) reads as absent: nothing to use.
      const bool known_null =
          it->second.IsNull() && std::find(cands.begin(), cands.end(), key) != cands.end();
      if (!st.used.count(p) && !known_null) {
        std::string msg = "unknown key '" + key + "'" + did_you_mean(key, cands);
        if (!cands.empty()) msg += "; known keys here: " + join(cands);
        throw Error(st.where(p, it->first), msg);
      }
      check_unused_rec(st, it->second, p);
    }
  } else if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i)
      check_unused_rec(st, node[i], path + "[" + std::to_string(i) + "]");
  }
}
}  // namespace

void Config::check_unused() const { check_unused_rec(*state_, state_->root, ""); }

// ---------------------------------------------------------------- ConfigNode

ConfigNode::ConfigNode(std::shared_ptr<detail::ConfigState> state, YAML::Node node, std::string path,
                       YAML::Node anchor)
    : state_(std::move(state)),
      node_(node),
      anchor_(anchor.IsDefined() ? anchor : node),
      path_(std::move(path)) {}

std::string ConfigNode::child_path(const std::string& key) const {
  return path_.empty() ? path_segment(key) : path_ + "." + path_segment(key);
}

std::string ConfigNode::where(const std::string& key) const {
  if (key.empty()) return state_->where(path_, anchor_);
  if (node_.IsMap()) {
    const YAML::Node& cn = node_;
    YAML::Node v = cn[key];
    if (v.IsDefined() && v.Mark().line >= 0) return state_->where(child_path(key), v);
  }
  return state_->where(child_path(key), anchor_);
}

bool ConfigNode::defined() const { return node_.IsDefined() && !node_.IsNull(); }
bool ConfigNode::is_scalar() const { return node_.IsScalar(); }
bool ConfigNode::is_sequence() const { return node_.IsSequence(); }
bool ConfigNode::is_map() const { return node_.IsMap(); }

bool ConfigNode::has(const std::string& key) const {
  state_->remember(path_, key);
  if (!node_.IsMap()) return false;
  const YAML::Node& cn = node_;
  YAML::Node v = cn[key];
  return v.IsDefined() && !v.IsNull();
}

YAML::Node ConfigNode::lookup(const std::string& key) const {
  state_->remember(path_, key);
  if (!node_.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
  const YAML::Node& cn = node_;
  YAML::Node v = cn[key];
  if (v.IsDefined()) state_->used.insert(child_path(key));
  return v;
}

// yaml-cpp nodes are handles whose assignment writes *through* them, so every step below binds a
// fresh handle (copy construction) and never reassigns one.
static YAML::Node resolved_map_at(YAML::Node parent, const std::vector<std::string>& parts, size_t i);

static YAML::Node resolved_step(YAML::Node parent, const std::string& raw) {
  std::vector<size_t> idx;
  const std::string name = segment_key(raw, idx);
  {
    YAML::Node probe = parent[name];
    bool ok = idx.empty() ? probe.IsMap() : probe.IsSequence();
    if (!ok) parent[name] = YAML::Node(idx.empty() ? YAML::NodeType::Map : YAML::NodeType::Sequence);
  }
  if (idx.empty()) return parent[name];
  YAML::Node seq = parent[name];
  while (seq.size() <= idx[0]) seq.push_back(YAML::Node(YAML::NodeType::Map));
  // An element recorded earlier as a scalar (the same key read as a list of names) becomes the map now read.
  if (!seq[idx[0]].IsMap()) seq[idx[0]] = YAML::Node(YAML::NodeType::Map);
  return seq[idx[0]];  // nested indices ("a[1][2]") are not produced by ConfigNode
}

static YAML::Node resolved_map_at(YAML::Node parent, const std::vector<std::string>& parts, size_t i) {
  if (i == parts.size()) return parent;
  return resolved_map_at(resolved_step(parent, parts[i]), parts, i + 1);
}

void ConfigNode::record(const std::string& key, const YAML::Node& value) const {
  std::vector<std::string> parts;
  if (!path_.empty()) parts = split_path(path_);
  YAML::Node target = resolved_map_at(state_->resolved, parts, 0);
  target[key] = value;
}

namespace {

template <typename T>
struct Parse;

template <>
struct Parse<std::string> {
  static const char* expected() { return "a string"; }
  static bool from(const YAML::Node& n, std::string& out) {
    if (!n.IsScalar()) return false;
    out = n.Scalar();
    return true;
  }
};

template <>
struct Parse<int64_t> {
  static const char* expected() { return "an integer"; }
  static bool from(const YAML::Node& n, int64_t& out) {
    if (!n.IsScalar() || n.Scalar().empty()) return false;
    const std::string& s = n.Scalar();
    errno = 0;
    char* end = nullptr;
    long long v = std::strtoll(s.c_str(), &end, 10);
    if (errno != 0 || *end != '\0') return false;
    out = v;
    return true;
  }
};

template <>
struct Parse<int> {
  static const char* expected() { return "an integer"; }
  static bool from(const YAML::Node& n, int& out) {
    int64_t v;
    if (!Parse<int64_t>::from(n, v) || v > std::numeric_limits<int>::max() ||
        v < std::numeric_limits<int>::min())
      return false;
    out = static_cast<int>(v);
    return true;
  }
};

template <>
struct Parse<double> {
  static const char* expected() { return "a number"; }
  static bool from(const YAML::Node& n, double& out) {
    if (!n.IsScalar() || n.Scalar().empty()) return false;
    const std::string& s = n.Scalar();
    if (s == ".inf" || s == ".Inf" || s == "inf") return out = INFINITY, true;
    if (s == "-.inf" || s == "-.Inf" || s == "-inf") return out = -INFINITY, true;
    errno = 0;
    char* end = nullptr;
    double v = std::strtod(s.c_str(), &end);
    if (errno != 0 || *end != '\0' || std::isnan(v)) return false;
    out = v;
    return true;
  }
};

template <>
struct Parse<bool> {
  static const char* expected() { return "true or false"; }
  static bool from(const YAML::Node& n, bool& out) {
    if (!n.IsScalar()) return false;
    const std::string& s = n.Scalar();
    if (s == "true" || s == "True" || s == "yes" || s == "on") return out = true, true;
    if (s == "false" || s == "False" || s == "no" || s == "off") return out = false, true;
    return false;
  }
};

template <typename E>
struct Parse<std::vector<E>> {
  static std::string expected_s() { return std::string("a list of ") + Parse<E>::expected(); }
  static const char* expected() {
    static const std::string s = expected_s();
    return s.c_str();
  }
  static bool from(const YAML::Node& n, std::vector<E>& out) {
    if (!n.IsSequence()) return false;
    out.clear();
    for (size_t i = 0; i < n.size(); ++i) {
      E e;
      if (!Parse<E>::from(n[i], e)) return false;
      out.push_back(e);
    }
    return true;
  }
};

template <typename T>
YAML::Node to_yaml(const T& v) {
  return YAML::Node(v);
}
template <>
YAML::Node to_yaml<double>(const double& v) {
  if (std::isinf(v)) return YAML::Node(v > 0 ? ".inf" : "-.inf");
  std::ostringstream os;
  os.precision(17);
  os << v;
  return YAML::Node(os.str());
}
template <>
YAML::Node to_yaml<std::vector<double>>(const std::vector<double>& v) {
  YAML::Node n(YAML::NodeType::Sequence);
  for (double d : v) n.push_back(to_yaml(d));
  n.SetStyle(YAML::EmitterStyle::Flow);
  return n;
}

}  // namespace

template <typename T>
T ConfigNode::get(const std::string& key, const T& fallback) const {
  YAML::Node v = lookup(key);
  T out = fallback;
  if (v.IsDefined() && !v.IsNull()) {
    if (!Parse<T>::from(v, out))
      throw Error(where(key), std::string("expected ") + Parse<T>::expected() + ", got " + describe(v));
  }
  record(key, to_yaml(out));
  return out;
}

template <typename T>
T ConfigNode::require(const std::string& key) const {
  YAML::Node v = lookup(key);
  if (!v.IsDefined() || v.IsNull()) {
    std::string hint;
    if (node_.IsMap()) {
      std::vector<std::string> present;
      for (auto it = node_.begin(); it != node_.end(); ++it) present.push_back(it->first.Scalar());
      hint = did_you_mean(key, present);
      if (!hint.empty()) hint = "; found a similar key" + hint;
    }
    throw Error(where(key), std::string("missing required key '") + key + "' (" + Parse<T>::expected() +
                                ")" + hint);
  }
  T out;
  if (!Parse<T>::from(v, out))
    throw Error(where(key), std::string("expected ") + Parse<T>::expected() + ", got " + describe(v));
  record(key, to_yaml(out));
  return out;
}

#define MTL_INSTANTIATE(T)                                              \
  template T ConfigNode::get<T>(const std::string&, const T&) const; \
  template T ConfigNode::require<T>(const std::string&) const;
MTL_INSTANTIATE(std::string)
MTL_INSTANTIATE(int64_t)
MTL_INSTANTIATE(int)
MTL_INSTANTIATE(double)
MTL_INSTANTIATE(bool)
MTL_INSTANTIATE(std::vector<int64_t>)
MTL_INSTANTIATE(std::vector<double>)
MTL_INSTANTIATE(std::vector<std::string>)
MTL_INSTANTIATE(std::vector<std::vector<std::string>>)
#undef MTL_INSTANTIATE

std::string ConfigNode::choice(const std::string& key, const std::string& fallback,
                               const std::vector<std::string>& allowed) const {
  std::string v = get<std::string>(key, fallback);
  for (const auto& a : allowed)
    if (a == v) return v;
  throw Error(where(key), "unknown value '" + v + "'" + did_you_mean(v, allowed) + "; expected one of: " +
                              join(allowed));
}

ConfigNode ConfigNode::child(const std::string& key) const {
  YAML::Node v = lookup(key);
  if (v.IsDefined() && !v.IsNull() && !v.IsMap())
    throw Error(where(key), "expected a map of options, got " + describe(v));
  // An absent section reads as an empty map (an absent key's node is a "zombie": never assign to it).
  if (!v.IsDefined() || v.IsNull()) return ConfigNode(state_, YAML::Node(YAML::NodeType::Map), child_path(key), node_);
  return ConfigNode(state_, v, child_path(key));
}

ConfigNode ConfigNode::component(const std::string& key, const std::string& default_type) const {
  YAML::Node v = lookup(key);
  if (!v.IsDefined() || v.IsNull()) {
    if (default_type.empty()) {
      state_->remember(path_, key);
      throw Error(where(key), "missing required key '" + key + "' (a component: name or {type: name, ...})");
    }
    YAML::Node m(YAML::NodeType::Map);
    m["type"] = default_type;
    return ConfigNode(state_, m, child_path(key));
  }
  if (v.IsScalar()) {
    YAML::Node m(YAML::NodeType::Map);
    m["type"] = v.Scalar();
    return ConfigNode(state_, m, child_path(key), v);  // messages point at the scalar
  }
  if (!v.IsMap()) throw Error(where(key), "expected a component name or a map with 'type', got " + describe(v));
  return ConfigNode(state_, v, child_path(key));
}

std::vector<ConfigNode> ConfigNode::components(const std::string& key,
                                               const std::vector<std::string>& fallback) const {
  YAML::Node v = lookup(key);
  std::vector<ConfigNode> out;
  if (!v.IsDefined() || v.IsNull()) {
    for (size_t i = 0; i < fallback.size(); ++i) {
      YAML::Node m(YAML::NodeType::Map);
      m["type"] = fallback[i];
      out.emplace_back(state_, m, child_path(key) + "[" + std::to_string(i) + "]");
    }
    return out;
  }
  if (!v.IsSequence()) throw Error(where(key), "expected a list, got " + describe(v));
  for (size_t i = 0; i < v.size(); ++i) {
    std::string p = child_path(key) + "[" + std::to_string(i) + "]";
    YAML::Node e = v[i];
    if (e.IsScalar()) {
      YAML::Node m(YAML::NodeType::Map);
      m["type"] = e.Scalar();
      out.emplace_back(state_, m, p, e);
    } else if (e.IsMap()) {
      out.emplace_back(state_, e, p);
    } else {
      throw Error(state_->where(p, e), "expected a name or a map with 'type', got " + describe(e));
    }
  }
  return out;
}

std::vector<std::string> ConfigNode::keys(const std::string& key) const {
  YAML::Node v = lookup(key);
  std::vector<std::string> out;
  if (!v.IsDefined() || v.IsNull()) return out;
  if (!v.IsMap()) throw Error(where(key), "expected a map, got " + describe(v));
  for (auto it = v.begin(); it != v.end(); ++it) out.push_back(it->first.Scalar());
  return out;
}

void ConfigNode::check(bool cond, const std::string& key, const std::string& expected) const {
  if (!cond) fail(key, expected);
}

void ConfigNode::fail(const std::string& key, const std::string& what) const {
  throw Error(key.empty() ? where() : where(key), what);
}

std::string ConfigNode::type() const {
  if (node_.IsScalar()) return node_.Scalar();
  return require<std::string>("type");
}

StringOrList string_or_list(const ConfigNode& n, const std::string& key, const std::string& fallback,
                            const std::string& expected) {
  try {
    return {false, {n.get<std::string>(key, fallback)}};
  } catch (const Error&) {
  }
  try {
    return {true, n.get<std::vector<std::string>>(key, {})};
  } catch (const Error&) {
  }
  n.fail(key, "expected " + expected);
}

}  // namespace mtl
