#include "test_util.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <sys/wait.h>
#include <unistd.h>

#include "mtl/core/error.h"

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

}  // namespace mtl_test
