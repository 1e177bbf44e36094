// mtl_bench's shared pieces: the command line, the models of the rows, and running one configuration of
// `mtl train` in a child process (tools/bench_train.cpp). The two tables built on them: threads against
// PyTorch (bench_train.cpp) and weighting methods against EW (bench_methods.cpp).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace mtl_bench {

using json = nlohmann::json;

struct BenchArgs {
  int64_t steps = 60, warmup = 5;
  int64_t train_size = 0;   // MultiFashion data.train_size (0 = the config's)
  int64_t max_threads = 0;  // 0 = physical cores
  std::vector<std::string> models{"lenet", "mlp"};
  std::vector<std::string> sets;             // extra --set overrides for every mtl run
  std::string text_data = "data_cache/bench_text";
  std::string run;                           // child mode: "model:workers:intra"
  std::string pytorch;                       // tools/bench_pytorch.py ("" = no baseline)
  std::string python = "/usr/bin/python3";   // a Python with torch (Debian's python3-torch)
  double max_wait = 30;                      // seconds to wait for idle cores before each configuration
  int repeats = 3;                           // runs per configuration (the median is reported)
  bool default_malloc = false, quick = false, print_data_prefix = false, write_text_data = false;
  std::string json_path;
  std::vector<std::string> methods;          // the weighting-method table: method specs ("all" = every one)
  std::vector<int> method_threads;           // its worker counts (default 1 and the physical cores)
  bool parallel = false;                     // the model-parallelism and precision table (bench_parallel.cpp)
};

struct ModelSpec {
  std::string label, config;
  std::vector<std::string> overrides;
  bool text = false;
};

/// lenet, mlp, transformer (synthetic text), sotu (configs/sotu.yaml), heads16 (configs/multi_fashion_16_heads.yaml)
/// or deep_mlp (MultiFashion, an MLP of 8 x 2048); mtl::Error for another name.
ModelSpec model_spec(const std::string& model, const BenchArgs& a);

std::string fixed(double v, int digits);
double num(const json& r, const char* key);
/// The command that runs one configuration of `model` in a child process, with extra --set overrides.
std::string mtl_command(const BenchArgs& a, const std::string& model, int workers, int intra,
                        const std::vector<std::string>& sets = {});
/// Runs a child benchmark command and returns the JSON line it printed.
json run_child(const std::string& cmd);
/// Waits up to max_wait seconds for other processes to leave the cores idle.
void wait_until_quiet(double max_wait);
std::string allocator_label(const BenchArgs& a);

/// The weighting-method table (--methods): every method in both spaces against EW.
int methods_driver(BenchArgs a);

/// The model-parallelism and precision table (--parallel): tasks, pipeline and bf16 against data parallelism.
int parallel_driver(BenchArgs a);

}  // namespace mtl_bench
