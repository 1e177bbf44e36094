#include "test_util.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sys/wait.h>
#include <unistd.h>

#include "mtl/core/error.h"
#include "mtl/metrics/metric.h"

namespace fs = std::filesystem;

namespace mtl_test {

ShellRun run_shell(const std::string& cmd) {
  ShellRun r{-1, ""};
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string source_path(const std::string& rel) { return std::string(MTL_SOURCE_DIR) + "/" + rel; }

TempDir::TempDir(const std::string& tag) {
  static std::atomic<int> counter{0};
  fs::path base = fs::path(MTL_BINARY_DIR) / "test_scratch";
  fs::create_directories(base);
  path_ = (base / (tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++))).string();
  fs::remove_all(path_);
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string fashion_mnist_dir() { return "/usr/share/datasets/fashion-mnist"; }

bool have_fashion_mnist() {
  return fs::exists(fashion_mnist_dir() + "/train-images-idx3-ubyte.gz");
}

std::string sotu_dir() {
  const std::string dir = std::string(MTL_BINARY_DIR) + "/test_data/sotu";
  if (!fs::exists(dir + "/test.jsonl")) {
    // ctest runs several users at once: one prepares, the others wait on the lock, then find the files.
    fs::create_directories(dir);
    ShellRun r = run_shell("flock " + dir + ".lock sh -c '[ -f " + dir + "/test.jsonl ] || /usr/bin/python3 " +
                           source_path("tools/prepare_sotu.py") + " --out " + dir + "'");
    EXPECT_EQ(r.code, 0) << r.out;
  }
  return dir;
}

namespace {

// Parses "x: <yaml>" and hands the component node to `build`; then checks that every key was read.
template <typename F>
auto build_component(const std::string& yaml, F&& build) {
  mtl::Config cfg = mtl::Config::from_string("x: " + yaml, "c.yaml");
  auto made = build(cfg.root().component("x"));
  cfg.check_unused();
  return made;
}

}  // namespace

mtl::Head make_head(const std::string& yaml, int64_t in_features, const mtl::LabelInfo& label) {
  return build_component(yaml, [&](const mtl::ConfigNode& n) {
    return mtl::head_registry().get(n.type()).make(n, mtl::HeadContext{in_features, label});
  });
}

mtl::LossFn make_loss(const std::string& yaml, const mtl::LabelInfo& label) {
  return build_component(yaml, [&](const mtl::ConfigNode& n) { return mtl::loss_registry().get(n.type()).make(n, label); });
}

std::unique_ptr<mtl::Metric> make_metric(const std::string& yaml, const mtl::LabelInfo& label) {
  return build_component(yaml, [&](const mtl::ConfigNode& n) { return mtl::metric_registry().get(n.type()).make(n, label); });
}

double evaluate_metric(const std::string& yaml, const mtl::LabelInfo& label, const at::Tensor& output,
                       const at::Tensor& target) {
  auto m = make_metric(yaml, label);
  m->update(output, target);
  return m->compute();
}

mtl::Backbone make_backbone(const std::string& yaml, const mtl::DatasetSchema& schema) {
  return build_component(yaml, [&](const mtl::ConfigNode& n) { return mtl::backbone_registry().get(n.type())(n, schema); });
}

MadeSource make_source(const std::string& type, const std::string& options) {
  MadeSource m{mtl::Config::from_string("data:\n  type: " + type + "\n" + options), nullptr};
  mtl::ConfigNode data = m.cfg.root().child("data");
  (void)data.type();
  m.source = mtl::dataset_registry().get(type)(data);
  return m;
}

mtl::LabelInfo class_label(int64_t classes, const std::string& name) {
  return {name, mtl::LabelKind::kClass, classes, {}};
}
mtl::LabelInfo multi_label(int64_t labels, const std::string& name) {
  return {name, mtl::LabelKind::kMultiLabel, labels, {}};
}
mtl::LabelInfo real_label(int64_t dims, const std::string& name) { return {name, mtl::LabelKind::kReal, dims, {}}; }
mtl::LabelInfo tag_label(const std::vector<std::string>& tags, const std::string& name) {
  return {name, mtl::LabelKind::kTokenClass, static_cast<int64_t>(tags.size()), tags};
}

std::vector<std::string> parameter_names(const torch::nn::Module& module) {
  std::vector<std::string> names;
  for (const auto& p : module.named_parameters()) names.push_back(p.key());
  return names;
}

void expect_same_parameters(const torch::nn::Module& a, const torch::nn::Module& b) {
  auto pa = a.named_parameters(), pb = b.named_parameters();
  ASSERT_EQ(parameter_names(a), parameter_names(b));
  for (const auto& p : pa) EXPECT_EQ(p.value().sizes(), pb[p.key()].sizes()) << p.key();
}

void copy_state(const torch::nn::Module& from, torch::nn::Module& to) {
  torch::NoGradGuard no_grad;
  auto params = to.named_parameters();
  for (const auto& p : from.named_parameters()) params[p.key()].copy_(p.value());
  auto buffers = to.named_buffers();
  for (const auto& b : from.named_buffers()) buffers[b.key()].copy_(b.value());
}

}  // namespace mtl_test
