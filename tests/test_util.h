// Helpers shared by the tests: paths to fixtures, temporary directories, error-message assertions.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>

namespace mtl_test {

/// Absolute path of a file in the source tree, e.g. source_path("configs/multi_fashion.yaml").
std::string source_path(const std::string& rel);

/// A fresh empty directory under the build tree's test scratch space, removed at destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "tmp");
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

/// Writes `text` to `path` (creating or truncating it).
void write_file(const std::string& path, const std::string& text);
std::string read_file(const std::string& path);

/// Runs `cmd` with /bin/sh, stderr merged into stdout; code is the exit status (-1 if it did not exit).
struct ShellRun {
  int code;
  std::string out;
};
ShellRun run_shell(const std::string& cmd);

/// True when the Debian Fashion-MNIST package is installed.
bool have_fashion_mnist();
std::string fashion_mnist_dir();

}  // namespace mtl_test

/// Asserts that `stmt` throws mtl::Error whose message contains every string in `parts`.
#define EXPECT_MTL_ERROR(stmt, ...)                                                   \
  do {                                                                               \
    bool thrown_ = false;                                                            \
    try {                                                                            \
      stmt;                                                                          \
    } catch (const mtl::Error& e_) {                                                 \
      thrown_ = true;                                                                \
      std::string msg_ = e_.what();                                                  \
      for (const std::string& p_ : std::initializer_list<std::string>{__VA_ARGS__})                                  \
        EXPECT_NE(msg_.find(p_), std::string::npos) << "message: " << msg_           \
                                                    << "\n  lacks: " << p_;          \
      EXPECT_EQ(msg_.find('\n'), std::string::npos) << "multi-line message: " << msg_; \
    }                                                                                \
    EXPECT_TRUE(thrown_) << "expected mtl::Error from: " #stmt;                      \
  } while (0)
