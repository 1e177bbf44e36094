// mtl_bench --parallel: model parallelism and precision against data parallelism in float32, each cell
// `mtl train` itself (a child process of tools/bench_train.cpp's --run mode with --set overrides), all timed in
// one invocation on the same machine:
//   (a) 16 tasks with 1024-wide MLP heads (configs/multi_fashion_16_heads.yaml): data-parallel workers against
//       engine.model_parallel: tasks;
//   (b) a deep MLP (8 x 2048) on MultiFashion: data-parallel workers (and one worker with every core as
//       intra-op threads) against engine.model_parallel: pipeline over the cores;
//   (c) trainer.precision: bf16 against float32 for MultiLeNet, the 2048-wide MLP and the Transformer (synthetic
//       text), data-parallel workers.
//   build/mtl_bench --parallel [--models heads16,deep_mlp,lenet,mlp,transformer] [--steps 40] [--repeats 3]
#include <algorithm>
#include <iostream>
#include <fstream>
#include <map>
#include <sstream>

#include "mtl/core/error.h"
#include "mtl/run/run_config.h"
#include "tools/bench_common.h"

namespace mtl_bench {

namespace {

struct Cell {
  std::string model, setting;
  bool baseline = false;  // the row's reference: data parallelism over the cores, float32
  std::string command;
  std::vector<json> runs;
  const json& median() {
    std::sort(runs.begin(), runs.end(),
              [](const json& x, const json& y) { return num(x, "samples_per_s") < num(y, "samples_per_s"); });
    return runs[runs.size() / 2];
  }
};

std::vector<Cell> plan_cells(const BenchArgs& a, int cores) {
  std::vector<Cell> cells;
  auto add = [&](const std::string& model, const std::string& setting, bool baseline, int workers, int intra,
                 const std::vector<std::string>& sets) {
    cells.push_back({model, setting, baseline, mtl_command(a, model, workers, intra, sets), {}});
  };
  const std::string c = std::to_string(cores);
  for (const std::string& model : a.models) {
    // Every row's reference: the data-parallel engine (configs may set model_parallel themselves).
    const std::vector<std::string> dp{"engine.model_parallel=none"};
    add(model, "data-parallel " + c + " workers, float32", true, cores, 1, dp);
    if (model == "heads16") {
      add(model, "tasks: heads over " + c + " threads", false, cores, 1, {"engine.model_parallel=tasks"});
    } else if (model == "deep_mlp") {
      add(model, "1 worker x " + c + " intra-op threads", false, 1, cores, dp);
      add(model, "pipeline over " + c + " threads, 4 micro-batches per stage", false, cores, 1,
          {"engine.model_parallel=pipeline"});
    } else {
      add(model, "bf16, data-parallel " + c + " workers", false, cores, 1,
          {"engine.model_parallel=none", "trainer.precision=bf16"});
    }
  }
  return cells;
}

}  // namespace

int parallel_driver(BenchArgs a) {
  if (a.quick) a.steps = 3, a.warmup = 2, a.repeats = 1, a.max_wait = 0, a.train_size = 2048;
  const int cores = static_cast<int>(a.max_threads > 0 ? a.max_threads : mtl::physical_cores());
  for (const std::string& model : a.models) model_spec(model, a);  // rejects an unknown name first
  std::vector<Cell> cells = plan_cells(a, cores);
  std::cerr << "mtl_bench --parallel: " << cells.size() << " configurations, " << a.warmup << " warmup + " << a.steps
            << " timed steps, " << a.repeats << " run(s) each\n";
  for (int rep = 0; rep < a.repeats; ++rep)
    for (Cell& c : cells) {
      std::cerr << "  [" << rep + 1 << "/" << a.repeats << "] " << c.model << ": " << c.setting << " ... " << std::flush;
      wait_until_quiet(a.max_wait);
      const json& r = c.runs.emplace_back(run_child(c.command));
      std::cerr << fixed(num(r, "samples_per_s"), 0) << " samples/s, loss " << fixed(num(r, "first_loss"), 3)
                << " -> " << fixed(num(r, "last_loss"), 3) << "\n";
    }
  std::map<std::string, double> reference;
  for (Cell& c : cells)
    if (c.baseline) reference[c.model] = num(c.median(), "samples_per_s");
  std::ostringstream out;
  out << "\nmodel parallelism and precision: mtl train, " << a.warmup << " warmup + " << a.steps
      << " timed steps, median of " << a.repeats << " run(s), " << cores << " cores; allocator: " << allocator_label(a)
      << "\n\n| model | setting | samples/s | vs data-parallel float32 | loss first -> last |\n|---|---|---|---|---|\n";
  json rows = json::array();
  for (Cell& c : cells) {
    const json& r = c.median();
    const double ratio = num(r, "samples_per_s") / reference[c.model];
    out << "| " << model_spec(c.model, a).label << " | " << c.setting << " | " << fixed(num(r, "samples_per_s"), 0)
        << " | " << fixed(ratio, 2) << "x | " << fixed(num(r, "first_loss"), 3) << " -> " << fixed(num(r, "last_loss"), 3)
        << " |\n";
    json row = r;
    row.update({{"model", c.model}, {"setting", c.setting}, {"vs_data_parallel", ratio}});
    rows.push_back(row);
  }
  std::cout << out.str() << std::flush;
  if (!a.json_path.empty()) {
    json j{{"warmup", a.warmup}, {"steps", a.steps}, {"repeats", a.repeats}, {"cores", cores}, {"rows", rows}};
    if (!(std::ofstream(a.json_path) << j.dump(2) << "\n")) throw mtl::Error(a.json_path, "cannot write the results");
  }
  return 0;
}

}  // namespace mtl_bench
