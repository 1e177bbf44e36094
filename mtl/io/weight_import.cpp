#include "mtl/io/weight_import.h"

#include <torch/torch.h>

#include <map>
#include <set>

#include "mtl/core/error.h"
#include "mtl/core/name_pattern.h"
#include "mtl/core/text.h"

namespace mtl {

namespace {


// safetensors' names, short and known on both sides of the Python/C++ border.
std::string dtype_name(at::ScalarType t) {
  std::string name = safetensors_dtype(t);
  return name.empty() ? c10::toString(t) : name;
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

// The longest of `prefixes` that selects `name`, or "" for none.
std::string longest_prefix_of(const std::vector<std::string>& prefixes, const std::string& name) {
  std::string best;
  for (const auto& p : prefixes)
    if (name_matches(p, name) && p.size() >= best.size()) best = p;
  return best;
}


}  // namespace

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

namespace {

// The model's parameters and buffers, the tensors an import may fill.
NamedTensors model_tensors(torch::nn::Module& model) {
  NamedTensors targets;
  for (const auto& kv : model.named_parameters()) targets.emplace_back(kv.key(), kv.value());
  for (const auto& kv : model.named_buffers()) targets.emplace_back(kv.key(), kv.value());
  return targets;
}

// A `load` prefix that selects no model tensor is surely a typo.
void check_load_prefixes(const NamedTensors& targets, const std::vector<std::string>& load,
                         const std::string& source_path) {
  for (const auto& p : load) {
    bool any = std::any_of(targets.begin(), targets.end(), [&](const auto& t) { return name_matches(p, t.first); });
    if (!any) throw Error(source_path, "the model has no tensors under '" + p + "' to load");
  }
}

// The file's tensors as the model would call them.
struct MappedNames {
  MappedTensors tensors;                  // in the file's order
  std::vector<std::string> mapped;        // their names
  std::map<std::string, size_t> by_name;  // mapped name -> index in `tensors`

  // Whether some mapped name lies under dotted prefix `prefix`.
  bool has_under(const std::string& prefix) const {
    auto it = by_name.lower_bound(prefix);
    for (; it != by_name.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it)
      if (name_matches(prefix, it->first)) return true;
    return false;
  }
};

// Maps every file tensor; two tensors landing on one name is a broken mapping.
MappedNames map_names(const NamedTensors& source, const NameMapping& mapping, const std::string& source_path) {
  MappedNames names;
  names.tensors = map_tensors(source, mapping, source_path);
  for (size_t i = 0; i < names.tensors.size(); ++i) {
    const MappedTensor& t = names.tensors[i];
    names.mapped.push_back(t.name);
    auto [it, fresh] = names.by_name.emplace(t.name, i);
    if (!fresh)
      throw Error(source_path, "tensors '" + names.tensors[it->second].origin + "' and '" + t.origin +
                                   "' both map to '" + t.name + "' (check strip_prefix, add_prefix and rename)");
  }
  return names;
}

// What an import would do, worked out before anything is copied: a refused import leaves the model as it was.
struct ImportPlan {
  WeightImportReport report;
  std::vector<std::pair<at::Tensor, at::Tensor>> copies;  // (model tensor, file tensor)
  std::set<std::string> wanted;                           // model names the file may fill
  std::vector<std::string> expected;                      // for the nothing-matches message
};

// A convolution kernel [O, C, ...] for another input channel count, when one side has a single channel: the file's
// kernels summed into one (a gray image then gets the response its 3-channel copy would), or one kernel spread
// evenly over the model's channels (a C-channel image whose channels are equal gets the 1-channel response).
// Undefined when the shapes differ otherwise.
at::Tensor adapt_input_channels(const at::Tensor& src, const at::Tensor& target) {
  if (src.dim() < 3 || src.dim() != target.dim() || src.size(0) != target.size(0)) return {};
  for (int64_t d = 2; d < src.dim(); ++d)
    if (src.size(d) != target.size(d)) return {};
  const int64_t from = src.size(1), to = target.size(1);
  if (from == to || (from != 1 && to != 1) || !at::isFloatingType(src.scalar_type())) return {};
  if (to == 1) return src.sum(1, /*keepdim=*/true);
  return src.expand(target.sizes()) / static_cast<double>(to);
}

// Model tensor `name` against the file's tensor of that name: loaded (floats maybe converted, kernels maybe
// adapted to the input channels) or mismatched.
void plan_copy(const std::string& name, const at::Tensor& target, at::Tensor src, bool adapt_channels,
               ImportPlan& plan) {
  WeightImportReport& r = plan.report;
  if (adapt_channels && src.sizes() != target.sizes()) {
    at::Tensor adapted = adapt_input_channels(src, target);
    if (adapted.defined()) {
      r.converted.push_back(name + ": " + shape_text(src.sizes()) + " -> " + shape_text(target.sizes()) +
                            (target.size(1) == 1 ? " (input channels summed)" : " (spread over the input channels)"));
      src = adapted;
    }
  }
  bool same_kind = src.scalar_type() == target.scalar_type() ||
                   (at::isFloatingType(src.scalar_type()) && at::isFloatingType(target.scalar_type()));
  if (src.sizes() != target.sizes() || !same_kind) {
    r.mismatched.push_back(name + ": file " + shape_text(src.sizes()) + " " + dtype_name(src.scalar_type()) + " vs model " +
                           shape_text(target.sizes()) + " " + dtype_name(target.scalar_type()));
    return;
  }
  if (src.scalar_type() != target.scalar_type())
    r.converted.push_back(name + ": " + dtype_name(src.scalar_type()) + " -> " + dtype_name(target.scalar_type()));
  r.loaded.push_back(name);
  plan.copies.emplace_back(target, src);
}

// Mapped file names that no wanted model tensor takes and no `ignore` prefix drops.
void plan_unexpected(const MappedNames& names, const WeightImportOptions& options, ImportPlan& plan) {
  for (const auto& name : names.mapped) {
    if (plan.wanted.count(name)) continue;
    // Dropped when an ignore prefix selects it more narrowly than any load / optional prefix does: with load
    // "backbone", ignore "backbone.fc" drops a classifier the backbone lacks; ignore "heads" never hides a
    // loaded head's surplus tensors.
    const size_t selected = std::max(longest_prefix_of(options.load, name).size(),
                                     longest_prefix_of(options.optional, name).size());
    const std::string ignored = longest_prefix_of(options.ignore, name);
    if (!ignored.empty() && (selected == 0 || ignored.size() > selected)) continue;
    plan.report.unexpected.push_back(name);
  }
}

// Sorts the model tensors that `options` select into loaded (with converted), missing and mismatched, and the
// file's tensors that none of them takes into unexpected.
ImportPlan plan_import(const NamedTensors& targets, const MappedNames& names, const WeightImportOptions& options) {
  ImportPlan plan;
  for (const auto& [name, target] : targets) {
    bool required = name_matches_any(options.load, name);
    std::string opt = required ? "" : longest_prefix_of(options.optional, name);
    if (!required && opt.empty()) continue;
    plan.wanted.insert(name);
    plan.expected.push_back(name);
    auto it = names.by_name.find(name);
    if (it == names.by_name.end()) {
      if (required || names.has_under(optional_group(opt, name))) plan.report.missing.push_back(name);
      continue;
    }
    plan_copy(name, target, names.tensors[it->second].tensor, options.adapt_channels, plan);
  }
  plan_unexpected(names, options, plan);
  return plan;
}

// Nothing to load and nothing mismatched: the names surely do not meet, so show both sides.
void check_anything_matches(const ImportPlan& plan, const NamedTensors& source, const MappedNames& names,
                            const std::string& source_path) {
  if (!plan.copies.empty() || !plan.report.mismatched.empty()) return;
  std::vector<std::string> file_names;
  for (const auto& kv : source) file_names.push_back(kv.first);
  std::string msg = "no tensor of the file matches a model tensor to load; the file has " +
                    std::to_string(source.size()) + ": " + first_names(file_names, 4);
  if (file_names != names.mapped) msg += " (after the name mapping: " + first_names(names.mapped, 4) + ")";
  throw Error(source_path, msg + "; the model expects " + std::to_string(plan.expected.size()) + ": " +
                               first_names(plan.expected, 4) +
                               " (map the names with strip_prefix, add_prefix, rename)");
}

// Refuses an import that would copy nothing, or (strict) one with anything missing, unexpected or mismatched.
void check_acceptable(const ImportPlan& plan, bool strict, const std::string& source_path) {
  const WeightImportReport& r = plan.report;
  bool problems = !r.missing.empty() || !r.unexpected.empty() || !r.mismatched.empty();
  if (!plan.copies.empty() && !(strict && problems)) return;
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
  if (!plan.copies.empty()) hint += ", or set model.init.strict: false to load the rest";
  throw Error(source_path, "cannot load the weights: " + join(parts, ", ") + "; " + hint);
}

}  // namespace

WeightImportReport import_weights(torch::nn::Module& model, const NamedTensors& source,
                                  const WeightImportOptions& options, const std::string& source_path) {
  const NamedTensors targets = model_tensors(model);
  check_load_prefixes(targets, options.load, source_path);
  const MappedNames names = map_names(source, options.mapping, source_path);
  ImportPlan plan = plan_import(targets, names, options);
  check_anything_matches(plan, source, names, source_path);
  check_acceptable(plan, options.strict, source_path);

  torch::NoGradGuard no_grad;
  for (auto& [target, src] : plan.copies) target.copy_(src);
  return plan.report;
}

}  // namespace mtl
