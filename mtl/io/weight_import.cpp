#include "mtl/io/weight_import.h"

#include <torch/torch.h>

#include <map>
#include <regex>
#include <set>

#include "mtl/core/error.h"
#include "mtl/core/name_pattern.h"

namespace mtl {

namespace {


std::string with_dot(const std::string& prefix) {
  return prefix.empty() || prefix.back() == '.' ? prefix : prefix + ".";
}

// safetensors' names, short and known on both sides of the Python/C++ border.
std::string dtype_name(at::ScalarType t) {
  std::string name = safetensors_dtype(t);
  return name.empty() ? c10::toString(t) : name;
}

std::string shape_text(const at::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

// "a, b, c" or "a, b, c and 7 more".
std::string first_names(const std::vector<std::string>& names, size_t n) {
  std::vector<std::string> head(names.begin(), names.begin() + std::min(n, names.size()));
  std::string s = join(head);
  if (names.size() > n) s += " and " + std::to_string(names.size() - n) + " more";
  return s;
}

// The sub-module of `name` below optional prefix `prefix`: heads.left.fc.weight under "heads" -> "heads.left".
std::string optional_group(const std::string& prefix, const std::string& name) {
  if (name.size() == prefix.size()) return name;
  auto dot = name.find('.', prefix.size() + 1);
  return dot == std::string::npos ? name : name.substr(0, dot);
}

// The longest optional prefix that selects `name`, or "" for none.
std::string optional_prefix_of(const std::vector<std::string>& optional, const std::string& name) {
  std::string best;
  for (const auto& p : optional)
    if (name_matches(p, name) && p.size() >= best.size()) best = p;
  return best;
}

}  // namespace

std::string check_rename_regex(const std::string& pattern) {
  try {
    std::regex re(pattern, std::regex::ECMAScript);
    return "";
  } catch (const std::regex_error& e) {
    return e.what();
  }
}

std::string NameMapping::apply(const std::string& file_name) const {
  std::string name = file_name;
  for (const auto& p : strip_prefixes) {
    std::string q = with_dot(p);
    if (!q.empty() && name.size() > q.size() && name.compare(0, q.size(), q) == 0) {
      name = name.substr(q.size());
      break;
    }
  }
  name = with_dot(add_prefix) + name;
  for (const auto& [from, to] : rename) {
    std::string why = check_rename_regex(from);
    if (!why.empty()) throw Error("rename '" + from + "'", "not a valid regular expression: " + why);
    name = std::regex_replace(name, std::regex(from, std::regex::ECMAScript), to);
  }
  return name;
}

std::string WeightImportReport::headline() const {
  return "loaded " + std::to_string(loaded.size()) + " tensor" + (loaded.size() == 1 ? "" : "s") + "; " +
         std::to_string(missing.size()) + " missing, " + std::to_string(unexpected.size()) + " unexpected, " +
         std::to_string(mismatched.size()) + " mismatched, " + std::to_string(converted.size()) + " converted";
}

std::string WeightImportReport::summary() const {
  std::string s = headline();
  auto list = [&s](const char* what, const std::vector<std::string>& names) {
    if (!names.empty()) s += std::string("\n  ") + what + ": " + first_names(names, 10);
  };
  list("missing (left at their initial values)", missing);
  list("unexpected (not loaded)", unexpected);
  list("mismatched (not loaded)", mismatched);
  list("converted", converted);
  return s;
}

WeightImportReport import_weights(torch::nn::Module& model, const NamedTensors& source,
                                  const WeightImportOptions& options, const std::string& source_path) {
  std::vector<std::pair<std::string, at::Tensor>> targets;
  for (const auto& kv : model.named_parameters()) targets.emplace_back(kv.key(), kv.value());
  for (const auto& kv : model.named_buffers()) targets.emplace_back(kv.key(), kv.value());
  for (const auto& p : options.load) {
    bool any = std::any_of(targets.begin(), targets.end(), [&](const auto& t) { return name_matches(p, t.first); });
    if (!any) throw Error(source_path, "the model has no tensors under '" + p + "' to load");
  }

  // File names as the model would call them; two tensors landing on one name is a broken mapping.
  std::map<std::string, size_t> by_name;  // mapped name -> index in `source`
  std::vector<std::string> mapped;
  for (size_t i = 0; i < source.size(); ++i) {
    mapped.push_back(options.mapping.apply(source[i].first));
    auto [it, fresh] = by_name.emplace(mapped.back(), i);
    if (!fresh)
      throw Error(source_path, "tensors '" + source[it->second].first + "' and '" + source[i].first +
                                   "' both map to '" + mapped.back() + "' (check strip_prefix, add_prefix and rename)");
  }
  auto file_has_under = [&](const std::string& prefix) {
    auto it = by_name.lower_bound(prefix);
    for (; it != by_name.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it)
      if (name_matches(prefix, it->first)) return true;
    return false;
  };

  // Check everything first: a refused import leaves the model as it was.
  WeightImportReport r;
  std::vector<std::pair<at::Tensor, at::Tensor>> copies;  // (model tensor, file tensor)
  std::set<std::string> wanted;                           // model names the file may fill
  std::vector<std::string> expected;                      // for the nothing-matches message
  for (const auto& [name, target] : targets) {
    bool required = name_matches_any(options.load, name);
    std::string opt = required ? "" : optional_prefix_of(options.optional, name);
    if (!required && opt.empty()) continue;
    wanted.insert(name);
    expected.push_back(name);
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      if (required || file_has_under(optional_group(opt, name))) r.missing.push_back(name);
      continue;
    }
    const at::Tensor& src = source[it->second].second;
    bool same_kind = src.scalar_type() == target.scalar_type() ||
                     (at::isFloatingType(src.scalar_type()) && at::isFloatingType(target.scalar_type()));
    if (src.sizes() != target.sizes() || !same_kind) {
      r.mismatched.push_back(name + ": file " + shape_text(src) + " " + dtype_name(src.scalar_type()) + " vs model " +
                             shape_text(target) + " " + dtype_name(target.scalar_type()));
      continue;
    }
    if (src.scalar_type() != target.scalar_type())
      r.converted.push_back(name + ": " + dtype_name(src.scalar_type()) + " -> " + dtype_name(target.scalar_type()));
    r.loaded.push_back(name);
    copies.emplace_back(target, src);
  }
  for (const auto& name : mapped) {
    if (wanted.count(name)) continue;
    bool selected = name_matches_any(options.load, name) || name_matches_any(options.optional, name);
    if (!selected && name_matches_any(options.ignore, name)) continue;
    r.unexpected.push_back(name);
  }

  if (copies.empty() && r.mismatched.empty()) {
    std::vector<std::string> file_names;
    for (const auto& kv : source) file_names.push_back(kv.first);
    std::string msg = "no tensor of the file matches a model tensor to load; the file has " +
                      std::to_string(source.size()) + ": " + first_names(file_names, 4);
    if (file_names != mapped) msg += " (after the name mapping: " + first_names(mapped, 4) + ")";
    throw Error(source_path, msg + "; the model expects " + std::to_string(expected.size()) + ": " +
                                 first_names(expected, 4) + " (map the names with strip_prefix, add_prefix, rename)");
  }
  bool problems = !r.missing.empty() || !r.unexpected.empty() || !r.mismatched.empty();
  if (copies.empty() || (options.strict && problems)) {
    std::vector<std::string> parts;
    if (!r.missing.empty())
      parts.push_back(std::to_string(r.missing.size()) + " missing (" + first_names(r.missing, 3) + ")");
    if (!r.unexpected.empty())
      parts.push_back(std::to_string(r.unexpected.size()) + " unexpected (" + first_names(r.unexpected, 3) + ")");
    if (!r.mismatched.empty())
      parts.push_back(std::to_string(r.mismatched.size()) + " mismatched (" + first_names(r.mismatched, 3) + ")");
    std::string hint = !r.missing.empty() || !r.unexpected.empty()
                           ? "check the name mapping (strip_prefix, add_prefix, rename) and which heads to load"
                           : "was it trained with another model config?";
    if (!copies.empty()) hint += ", or set model.init.strict: false to load the rest";
    throw Error(source_path, "cannot load the weights: " + join(parts, ", ") + "; " + hint);
  }

  torch::NoGradGuard no_grad;
  for (auto& [target, src] : copies) target.copy_(src);
  return r;
}

}  // namespace mtl
