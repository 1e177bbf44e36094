// Sweeps: one config trained for every combination of a grid of settings and for several seeds, each run in its
// own directory, followed by a table of mean and standard deviation per combination (every test metric and
// delta-m) and the HTML report of all runs (mtl/report/html.h).
//
//   mtl sweep configs/multi_fashion.yaml --grid weighting.method=ew,pcgrad,mgda --seeds 3
//   # runs/multi_fashion.sweep/weighting.method=ew/seed0, ..., summary.md, summary.json, report.html
//
// Runs go one after another, each with the config's threads. A sweep is resumable: started again, it skips the
// finished runs (recorded in <dir>/sweep.json) and continues a stopped one from its checkpoint. The single-task
// baselines (delta-m) are trained once per seed, in <dir>/baselines/, and shared by every combination whose
// settings do not change them (weighting.* and model.architecture.* never do; other grid keys get their own).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace mtl {

struct SweepAxis {
  std::string key;                  // a config key path, e.g. "weighting.method"
  std::vector<std::string> values;  // YAML values, e.g. "ew", "{type: mmoe, experts: 4}"
};

/// "key=v1,v2,..." -> an axis; commas inside [] and {} do not split. Throws mtl::Error naming `where` for a
/// missing '=', an empty key or an empty value list.
SweepAxis parse_sweep_axis(const std::string& text, const std::string& where);

/// One run of a sweep.
struct SweepRun {
  std::vector<std::pair<std::string, std::string>> settings;  // (key, value) per axis
  int64_t seed = 0;
  std::string combination;  // "weighting.method=ew" (axes joined by ','; "default" without axes)
  std::string run_dir;      // <dir>/<combination, made file-name safe>/seed<k>
};

/// Every combination of the axes (the first axis varies slowest) times seeds base_seed, base_seed + 1, ...
std::vector<SweepRun> sweep_runs(const std::vector<SweepAxis>& grid, int64_t seeds, int64_t base_seed,
                                 const std::string& dir);

struct SweepOptions {
  std::string config;               // the YAML file
  std::vector<std::string> sets;    // --set overrides for every run
  std::vector<std::string> grid;    // --grid axes; replace the config's sweep.grid when given
  int64_t seeds = 0;                // --seeds; 0: the config's sweep.seeds
  std::string dir;                  // --dir; "": sweep.dir, else <trainer.run_dir>.sweep
  bool baselines = true;            // train single-task baselines (delta-m) once per seed
  bool progress = true;             // each run's progress display
};

/// Mean and sample standard deviation (n - 1; NaN for one value) of one metric over a combination's seeds.
struct SweepStat {
  std::string metric;  // "left/accuracy", "delta_m", ...
  double mean = 0.0;
  double stdev = 0.0;
  int64_t n = 0;
};

struct SweepSummary {
  std::string dir;
  std::vector<std::string> combinations;
  std::vector<std::vector<SweepStat>> stats;  // per combination
  std::string markdown;                        // the table, also in <dir>/summary.md
  bool interrupted = false;                    // Ctrl-C: the sweep stopped; run it again to continue
};

/// Runs (or continues) the sweep; writes <dir>/summary.md, summary.json and report.html when every run is done.
/// Progress ("run 3/12 ... ETA") goes to stderr.
SweepSummary run_sweep(const SweepOptions& options);

/// The Markdown table of per-combination stats (mean ± std per metric).
std::string sweep_table(const std::vector<std::string>& combinations, const std::vector<std::vector<SweepStat>>& stats);

}  // namespace mtl
