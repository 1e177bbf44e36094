#include "mtl/model/freezing.h"

#include "mtl/config/config_node.h"
#include "mtl/core/name_pattern.h"

namespace mtl {

namespace {

FreezeSetting parse_setting(const ConfigNode& n) {
  FreezeSetting s;
  s.params = n.get<std::vector<std::string>>("params", {});
  s.train_only = n.get<std::vector<std::string>>("train_only", {});
  s.blocks = non_negative<int64_t>(n, "blocks", 0);
  for (const auto& p : s.params) n.check(!p.empty(), "params", "expected non-empty parameter-name patterns");
  for (const auto& p : s.train_only) n.check(!p.empty(), "train_only", "expected non-empty parameter-name patterns");
  return s;
}

}  // namespace

const FreezeSetting& FreezeOptions::at_epoch(int64_t epoch) const {
  const FreezeSetting* s = &initial;
  for (const auto& [first, setting] : schedule)
    if (epoch >= first) s = &setting;
  return *s;
}

bool FreezeOptions::empty() const {
  if (!(initial == FreezeSetting{})) return false;
  for (const auto& stage : schedule)
    if (!(stage.second == FreezeSetting{})) return false;
  return true;
}

FreezeOptions parse_freeze_options(const ConfigNode& node) {
  FreezeOptions o;
  o.initial = parse_setting(node);
  int64_t last = 1;
  for (const ConfigNode& stage : node.components("schedule")) {
    int64_t epoch = stage.require<int64_t>("epoch");
    stage.check(epoch > last, "epoch",
                "expected epochs counted from 1, increasing, after the first (the top-level setting holds for "
                "epoch 1), got " + std::to_string(epoch));
    last = epoch;
    o.schedule.emplace_back(epoch - 1, parse_setting(stage));
  }
  return o;
}

std::vector<std::vector<std::string>> backbone_blocks(const MultiTaskModelImpl& model) { return model.trunk_blocks(); }

std::set<std::string> frozen_parameters(const MultiTaskModelImpl& model, const FreezeSetting& s) {
  std::vector<std::string> block_prefixes;
  auto blocks = backbone_blocks(model);
  for (int64_t b = 0; b < s.blocks && b < static_cast<int64_t>(blocks.size()); ++b)
    block_prefixes.insert(block_prefixes.end(), blocks[b].begin(), blocks[b].end());
  std::set<std::string> out;
  for (const auto& kv : model.named_parameters()) {
    const std::string& name = kv.key();
    bool frozen = name_matches_any(s.params, name) || name_matches_any(block_prefixes, name) ||
                  (!s.train_only.empty() && !name_matches_any(s.train_only, name));
    if (frozen) out.insert(name);
  }
  return out;
}

void validate_freeze_options(const FreezeOptions& o, const MultiTaskModelImpl& model, const ConfigNode& node) {
  std::vector<std::string> names;
  for (const auto& kv : model.named_parameters()) names.push_back(kv.key());
  const int64_t blocks = static_cast<int64_t>(backbone_blocks(model).size());
  auto check = [&](const FreezeSetting& s, const ConfigNode& at) {
    auto check_patterns = [&](const std::vector<std::string>& patterns, const std::string& key) {
      for (const auto& p : patterns) {
        bool any = false;
        for (const auto& n : names) any = any || name_matches(p, n);
        at.check(any, key,
                 "pattern '" + p + "' selects no parameter (names look like '" + names.front() +
                     "'; `mtl inspect` lists them)");
      }
    };
    check_patterns(s.params, "params");
    check_patterns(s.train_only, "train_only");
    at.check(s.blocks <= blocks, "blocks",
             "the backbone has " + std::to_string(blocks) + " blocks, got " + std::to_string(s.blocks));
  };
  check(o.initial, node);
  std::vector<ConfigNode> stages = node.components("schedule");
  for (size_t i = 0; i < o.schedule.size(); ++i) check(o.schedule[i].second, stages[i]);
}

bool freezes_whole_trunk(const FreezeOptions& o, const MultiTaskModelImpl& model) {
  std::vector<FreezeSetting> stages{o.initial};
  for (const auto& s : o.schedule) stages.push_back(s.second);
  for (const auto& s : stages) {
    std::set<std::string> frozen = frozen_parameters(model, s);
    bool trunk_trains = false;
    for (const auto& name : model.shared_parameter_names()) trunk_trains = trunk_trains || !frozen.count(name);
    if (!trunk_trains) return true;
  }
  return false;
}

int64_t apply_freezing(MultiTaskModelImpl& model, const std::set<std::string>& frozen) {
  int64_t count = 0;
  for (auto& kv : model.named_parameters()) {
    at::Tensor& p = kv.value();
    bool freeze = frozen.count(kv.key()) > 0;
    p.set_requires_grad(!freeze);
    if (freeze) {
      p.mutable_grad() = at::Tensor();
      count += p.numel();
    }
  }
  // Normalisation layers: modules with buffers of their own (running statistics).
  std::vector<std::string> norms;
  auto modules = model.named_modules("", /*include_self=*/false);
  auto all_frozen = [&](const torch::nn::Module& m, const std::string& prefix) {
    auto params = m.named_parameters();
    if (params.is_empty()) return false;
    for (const auto& kv : params)
      if (!frozen.count(prefix + kv.key())) return false;
    return true;
  };
  for (const auto& kv : modules) {
    const std::string& name = kv.key();
    if (kv.value()->named_buffers(/*recurse=*/false).is_empty()) continue;
    bool is_frozen = all_frozen(*kv.value(), name + ".");
    if (kv.value()->named_parameters().is_empty()) {
      // No affine parameters: frozen when its enclosing module is.
      auto dot = name.rfind('.');
      std::string parent = dot == std::string::npos ? "" : name.substr(0, dot);
      if (!parent.empty() && modules.contains(parent)) is_frozen = all_frozen(*modules[parent], parent + ".");
    }
    if (is_frozen) norms.push_back(name);
  }
  model.set_frozen_norm_modules(norms);
  return count;
}

}  // namespace mtl
