// Shared by the fuzz targets (libFuzzer): the input as a file (the readers take paths, as mtl's users give
// them), the one outcome a bad input may have (an mtl::Error: a one-line message naming the file; anything
// else -- a crash, a sanitizer report, another exception type, a hang, unbounded memory -- is a bug), and a
// dataset source read the way a run reads it.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mtl/config/config_node.h"
#include "mtl/core/error.h"
#include "mtl/data/dataset.h"
#include "mtl/data/text/tokenizer.h"

namespace mtl_fuzz {

using Target = int (*)(const uint8_t* data, size_t size);

/// Every target compiled into this program, by name (the test suite runs them all on the seed corpora and the
/// regression inputs: tests/fuzz/fuzz_regressions_test.cpp).
inline std::map<std::string, Target>& targets() {
  static std::map<std::string, Target> all;
  return all;
}
inline bool register_target(const char* name, Target f) {
  targets()[name] = f;
  return true;
}

// MTL_FUZZ_TARGET(name, function): in the fuzz build (tests/fuzz/CMakeLists.txt defines MTL_FUZZ_TARGET_MAIN)
// the function is libFuzzer's entry point; in the test suite it is registered under `name`.
#ifdef MTL_FUZZ_TARGET_MAIN
#define MTL_FUZZ_TARGET(name, function) \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { return function(data, size); }
#else
#define MTL_FUZZ_TARGET(name, function) \
  [[maybe_unused]] static const bool mtl_fuzz_registered_##function = mtl_fuzz::register_target(name, function);
#endif

/// This process's scratch directory in /dev/shm (or $TMPDIR), created on first use.
inline const std::string& scratch_dir() {
  static const std::string dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string d = std::string(access("/dev/shm", W_OK) == 0 ? "/dev/shm" : (tmp ? tmp : "/tmp")) + "/mtl_fuzz_" +
                    std::to_string(getpid());
    mkdir(d.c_str(), 0700);
    return d;
  }();
  return dir;
}

/// Writes `size` bytes to the scratch file `name` and returns its path.
inline std::string input_file(const uint8_t* data, size_t size, const std::string& name) {
  const std::string path = scratch_dir() + "/" + name;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) std::abort();
  if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  return path;
}

/// Runs `f`; an mtl::Error is the expected answer to bad input, every other exception escapes (a finding).
inline int expect_mtl_errors_only(const std::function<void()>& f) {
  try {
    f();
  } catch (const mtl::Error&) {
  }
  return 0;
}

/// What a run does with a data source: the tokenizer (trained on the training texts), the schema, then every
/// example of both splits collated into batches.
inline void read_like_a_run(mtl::DatasetSource& source) {
  if (source.needs_tokenizer()) {
    mtl::TokenizerOptions options;
    auto tok = mtl::make_tokenizer(options, [&source](const std::function<void(const std::string&)>& visit) {
      source.for_each_training_text(visit);
    });
    source.set_tokenizer(tok);
  }
  source.schema();
  for (mtl::Split split : {mtl::Split::kTrain, mtl::Split::kTest}) {
    auto ds = source.open(split);
    std::vector<int64_t> all;
    for (int64_t i = 0; i < ds->size(); ++i) {
      all.push_back(i);
      if (all.size() == 64) {
        ds->batch(all);
        all.clear();
      }
    }
    if (!all.empty()) ds->batch(all);
  }
}

/// The source that `data_yaml` (a `data:` section's value) describes.
inline std::shared_ptr<mtl::DatasetSource> source_from(const std::string& data_yaml) {
  mtl::Config config = mtl::Config::from_string("data: " + data_yaml + "\n", "fuzz.yaml");
  mtl::ConfigNode node = config.root().component("data");
  return mtl::dataset_registry().get(node.type(), node.where("type"))(node);
}

}  // namespace mtl_fuzz
