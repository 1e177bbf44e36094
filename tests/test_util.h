// Helpers shared by the tests: paths to fixtures, temporary directories, error-message assertions, and
// components (heads, losses, metrics, backbones, dataset sources) built from YAML through their registries,
// as a run builds them.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>

#include "backbones/backbone.h"
#include "heads/head.h"
#include "mtl/config/config_node.h"
#include "mtl/data/dataset.h"
#include "mtl/metrics/metric.h"

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
/// The State of the Union passages prepared once per build tree (tools/prepare_sotu.py: npm pack, kept beside
/// them): the directory holding train.jsonl and test.jsonl. Tests running at once wait on one preparation.
std::string sotu_dir();

// Components from YAML: `yaml` is one component node, a name or a map ("cross_entropy",
// "{type: huber, delta: 2}"), parsed from a file named "c.yaml"; keys the component does not read are errors.
mtl::Head make_head(const std::string& yaml, int64_t in_features, const mtl::LabelInfo& label);
mtl::LossFn make_loss(const std::string& yaml, const mtl::LabelInfo& label);
std::unique_ptr<mtl::Metric> make_metric(const std::string& yaml, const mtl::LabelInfo& label);
/// make_metric, one update with (output, target), compute().
double evaluate_metric(const std::string& yaml, const mtl::LabelInfo& label, const at::Tensor& output,
                       const at::Tensor& target);
mtl::Backbone make_backbone(const std::string& yaml, const mtl::DatasetSchema& schema);

/// A dataset source built by the registered factory from `data:` options (indented lines under the
/// `data:` key, e.g. "  train: a.csv\n"); the Config stays alive with it (its resolved values can be read).
struct MadeSource {
  mtl::Config cfg;
  std::shared_ptr<mtl::DatasetSource> source;
};
MadeSource make_source(const std::string& type, const std::string& options);

/// Labels of each kind for component tests: classes(3), multi_labels(2), reals(1), tags({"O", "B-PER"}).
mtl::LabelInfo class_label(int64_t classes, const std::string& name = "c");
mtl::LabelInfo multi_label(int64_t labels, const std::string& name = "m");
mtl::LabelInfo real_label(int64_t dims, const std::string& name = "y");
mtl::LabelInfo tag_label(const std::vector<std::string>& tags, const std::string& name = "ner");

/// Parameter names of a module, in registration order.
std::vector<std::string> parameter_names(const torch::nn::Module& module);
/// Expects the same parameter names and shapes, in the same order (e.g. a component built from C++ options
/// and the same one built from YAML).
void expect_same_parameters(const torch::nn::Module& a, const torch::nn::Module& b);
/// Copies every parameter and buffer of `from` into the same-named one of `to`, so both compute the same.
void copy_state(const torch::nn::Module& from, torch::nn::Module& to);

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
