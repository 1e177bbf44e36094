// The config loader: YAML text plus `--set` overrides (the input's parts, split at NUL bytes: YAML first), then
// every section read through the typed getters the components use, the unused-key check and the resolved copy.
#include <yaml-cpp/yaml.h>

#include "fuzz_util.h"

namespace {

const char* kSections[] = {"data", "datasets", "model", "tasks", "weighting", "optimizer", "scheduler", "trainer",
                           "engine", "logging", "diagnostics", "sweep", "distributed", "freeze", "tokenizer",
                           "task_sampler", "baselines"};

// Reads every key below `n` every way a component might (each failure is an mtl::Error, caught per read).
void visit(const mtl::ConfigNode& n, const std::string& key, int depth) {
  auto each = [](const std::function<void()>& f) { mtl_fuzz::expect_mtl_errors_only(f); };
  each([&] { n.get<std::string>(key, ""); });
  each([&] { n.get<double>(key, 0.0); });
  each([&] { n.get<int64_t>(key, 0); });
  each([&] { n.get<bool>(key, false); });
  each([&] { n.get<std::vector<std::string>>(key, {}); });
  each([&] { n.get<std::vector<int64_t>>(key, {}); });
  each([&] { n.get<std::vector<double>>(key, {}); });
  each([&] { n.choice(key, "a", {"a", "b"}); });
  each([&] { n.component(key, "x").type(); });
  each([&] {
    for (const mtl::ConfigNode& c : n.components(key)) c.type();
  });
  if (depth >= 6) return;
  each([&] {
    mtl::ConfigNode c = n.child(key);
    for (const std::string& k : n.keys(key)) visit(c, k, depth + 1);
  });
}

int fuzz_config(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    const size_t end = input.find('\0', start);
    parts.push_back(input.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  const std::vector<std::string> sets(parts.begin() + 1, parts.end());
  return mtl_fuzz::expect_mtl_errors_only([&] {
    mtl::Config config = mtl::Config::from_string(parts[0], "fuzz.yaml", sets);
    mtl::ConfigNode root = config.root();
    for (const char* s : kSections) visit(root, s, 0);
    mtl_fuzz::expect_mtl_errors_only([&] { config.check_unused(); });
    config.resolved_yaml();
  });
}

}  // namespace

MTL_FUZZ_TARGET("config", fuzz_config)
