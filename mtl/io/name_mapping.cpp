#include "mtl/io/name_mapping.h"

#include <ATen/ATen.h>

#include <map>
#include <numeric>
#include <regex>

#include "mtl/core/error.h"
#include "mtl/core/text.h"

namespace mtl {

namespace {

std::string with_dot(const std::string& prefix) {
  return prefix.empty() || prefix.back() == '.' ? prefix : prefix + ".";
}

std::regex compile(const std::string& pattern) {
  std::string why = check_rename_regex(pattern);
  if (!why.empty()) throw Error("rename '" + pattern + "'", "not a valid regular expression: " + why);
  return std::regex(pattern, std::regex::ECMAScript);
}

// The file name with the first matching strip prefix removed and add_prefix prepended.
std::string prefixed(const NameMapping& m, std::string name) {
  for (const auto& p : m.strip_prefixes) {
    std::string q = with_dot(p);
    if (!q.empty() && name.size() > q.size() && name.compare(0, q.size(), q) == 0) {
      name = name.substr(q.size());
      break;
    }
  }
  return with_dot(m.add_prefix) + name;
}

// A dimension of `t` that `dim` (negative: from the end) names, or -1.
int64_t resolve_dim(const at::Tensor& t, int64_t dim) {
  const int64_t d = dim < 0 ? dim + t.dim() : dim;
  return d >= 0 && d < t.dim() ? d : -1;
}

void apply_rename(const RenameRule& rule, MappedTensors& ts) {
  const std::regex re = compile(rule.from[0]);
  for (auto& t : ts) t.name = std::regex_replace(t.name, re, rule.to[0]);
}

// Part sizes of `t` along `d` for a split rule: its sizes, or equal parts.
std::vector<int64_t> split_sizes(const RenameRule& rule, const MappedTensor& t, int64_t d,
                                 const std::string& source_path) {
  const int64_t n = t.tensor.size(d), parts = static_cast<int64_t>(rule.to.size());
  const std::string where = rule.describe() + ": '" + t.origin + "' " + shape_text(t.tensor.sizes());
  if (!rule.sizes.empty()) {
    if (std::accumulate(rule.sizes.begin(), rule.sizes.end(), int64_t{0}) != n)
      throw Error(source_path, where + " has " + std::to_string(n) + " along dim " + std::to_string(d) +
                                   ", but the sizes " + shape_text(rule.sizes) + " add up to another number");
    return rule.sizes;
  }
  if (n % parts != 0)
    throw Error(source_path, where + " has " + std::to_string(n) + " along dim " + std::to_string(d) +
                                 ", not divisible into " + std::to_string(parts) + " equal parts (give sizes)");
  return std::vector<int64_t>(parts, n / parts);
}

void apply_split(const RenameRule& rule, MappedTensors& ts, const std::string& source_path) {
  const std::regex re = compile(rule.from[0]);
  MappedTensors out;
  for (auto& t : ts) {
    if (!std::regex_search(t.name, re)) {
      out.push_back(std::move(t));
      continue;
    }
    const int64_t d = resolve_dim(t.tensor, rule.dim);
    if (d < 0)
      throw Error(source_path, rule.describe() + ": '" + t.origin + "' " + shape_text(t.tensor.sizes()) +
                                   " has no dim " + std::to_string(rule.dim));
    const std::vector<at::Tensor> parts = t.tensor.split_with_sizes(split_sizes(rule, t, d, source_path), d);
    for (size_t i = 0; i < parts.size(); ++i)
      out.push_back({std::regex_replace(t.name, re, rule.to[i]), parts[i],
                     t.origin + " (part " + std::to_string(i + 1) + " of " + std::to_string(parts.size()) + ")"});
  }
  ts = std::move(out);
}

// One concatenation being gathered: its parts (by part index) and where it goes in the output.
struct Gathered {
  std::vector<const MappedTensor*> parts;
  size_t position = 0;
};

// Concatenates the gathered parts along `dim`, checking that every part is there and that the shapes fit.
MappedTensor concatenate(const RenameRule& rule, const std::string& name, const Gathered& g,
                         const std::string& source_path) {
  std::vector<at::Tensor> tensors;
  std::vector<std::string> origins;
  for (size_t i = 0; i < g.parts.size(); ++i) {
    if (!g.parts[i])
      throw Error(source_path, rule.describe() + ": '" + name + "' has no part " + std::to_string(i + 1) +
                                   " (no tensor matching '" + rule.from[i] + "' maps to it)");
    tensors.push_back(g.parts[i]->tensor);
    origins.push_back(g.parts[i]->origin);
  }
  const int64_t d = resolve_dim(tensors[0], rule.dim);
  for (const auto& t : tensors) {
    bool fits = d >= 0 && t.dim() == tensors[0].dim() && t.scalar_type() == tensors[0].scalar_type();
    for (int64_t k = 0; fits && k < t.dim(); ++k) fits = k == d || t.size(k) == tensors[0].size(k);
    if (!fits) {
      std::vector<std::string> shapes;
      for (size_t i = 0; i < tensors.size(); ++i)
        shapes.push_back(origins[i] + " " + shape_text(tensors[i].sizes()) + " " +
                         c10::toString(tensors[i].scalar_type()));
      throw Error(source_path, rule.describe() + ": the parts of '" + name + "' do not fit together along dim " +
                                   std::to_string(rule.dim) + ": " + join(shapes));
    }
  }
  return {name, at::cat(tensors, d), join(origins, " + ")};
}

void apply_concat(const RenameRule& rule, MappedTensors& ts, const std::string& source_path) {
  std::vector<std::regex> res;
  for (const auto& f : rule.from) res.push_back(compile(f));
  std::map<std::string, Gathered> groups;  // target name -> parts
  std::vector<bool> taken(ts.size(), false);
  for (size_t i = 0; i < ts.size(); ++i) {
    for (size_t p = 0; p < res.size(); ++p) {
      if (!std::regex_search(ts[i].name, res[p])) continue;
      const std::string name = std::regex_replace(ts[i].name, res[p], rule.to[0]);
      Gathered& g = groups[name];
      if (g.parts.empty()) {
        g.parts.assign(res.size(), nullptr);
        g.position = i;
      }
      if (g.parts[p])
        throw Error(source_path, rule.describe() + ": both '" + g.parts[p]->origin + "' and '" + ts[i].origin +
                                     "' are part " + std::to_string(p + 1) + " of '" + name + "'");
      g.parts[p] = &ts[i];
      taken[i] = true;
      break;  // a name is a part of one concatenation only: the first pattern it matches
    }
  }
  std::map<size_t, MappedTensor> made;  // output position -> concatenation
  for (const auto& [name, g] : groups) made.emplace(g.position, concatenate(rule, name, g, source_path));
  MappedTensors out;
  for (size_t i = 0; i < ts.size(); ++i) {
    auto it = made.find(i);
    if (it != made.end()) out.push_back(std::move(it->second));
    if (!taken[i]) out.push_back(std::move(ts[i]));
  }
  ts = std::move(out);
}

}  // namespace

RenameRule::RenameRule(std::string from_regex, std::string replacement)
    : kind(Kind::rename), from{std::move(from_regex)}, to{std::move(replacement)} {}

RenameRule RenameRule::split(std::string from_regex, std::vector<std::string> part_names, int64_t dim,
                             std::vector<int64_t> sizes) {
  RenameRule r;
  r.kind = Kind::split;
  r.from = {std::move(from_regex)};
  r.to = std::move(part_names);
  r.dim = dim;
  r.sizes = std::move(sizes);
  return r;
}

RenameRule RenameRule::concat(std::vector<std::string> part_regexes, std::string name, int64_t dim) {
  RenameRule r;
  r.kind = Kind::concat;
  r.from = std::move(part_regexes);
  r.to = {std::move(name)};
  r.dim = dim;
  return r;
}

std::string RenameRule::describe() const {
  switch (kind) {
    case Kind::split:
      return "split '" + from[0] + "' into " + std::to_string(to.size());
    case Kind::concat:
      return "concat " + std::to_string(from.size()) + " parts into '" + to[0] + "'";
    case Kind::rename:
      break;
  }
  return "rename '" + from[0] + "' -> '" + to[0] + "'";
}

std::string NameMapping::apply(const std::string& file_name) const {
  std::string name = prefixed(*this, file_name);
  for (const auto& rule : rules) {
    if (rule.kind != RenameRule::Kind::rename)
      throw Error(rule.describe(), "a split or concat rule maps tensors, not one name (use map_tensors)");
    name = std::regex_replace(name, compile(rule.from[0]), rule.to[0]);
  }
  return name;
}

MappedTensors map_tensors(const NamedTensors& source, const NameMapping& mapping, const std::string& source_path) {
  MappedTensors ts;
  ts.reserve(source.size());
  for (const auto& [name, t] : source) ts.push_back({prefixed(mapping, name), t, name});
  for (const auto& rule : mapping.rules) {
    switch (rule.kind) {
      case RenameRule::Kind::rename:
        apply_rename(rule, ts);
        break;
      case RenameRule::Kind::split:
        apply_split(rule, ts, source_path);
        break;
      case RenameRule::Kind::concat:
        apply_concat(rule, ts, source_path);
        break;
    }
  }
  return ts;
}

std::vector<RenameRule> torch_transformer_encoder_rules(const std::string& prefix) {
  const std::string layer = "^(?:.*\\.)?layers\\.(\\d+)\\.", to = prefix + "blocks.$1.";
  return {
      {layer + "self_attn\\.in_proj_(weight|bias)$", to + "qkv.$2"},
      {layer + "self_attn\\.out_proj\\.(weight|bias)$", to + "proj.$2"},
      {layer + "linear1\\.(weight|bias)$", to + "ffn1.$2"},
      {layer + "linear2\\.(weight|bias)$", to + "ffn2.$2"},
      {layer + "norm([12])\\.(weight|bias)$", to + "norm$2.$3"},
      {"^(?:.*\\.)?norm\\.(weight|bias)$", prefix + "final_norm.$1"},
  };
}

std::string check_rename_regex(const std::string& pattern) {
  try {
    std::regex re(pattern, std::regex::ECMAScript);
    return "";
  } catch (const std::regex_error& e) {
    return e.what();
  }
}

}  // namespace mtl
