#include "mtl/sweep/sweep.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "mtl/config/config_node.h"
#include "mtl/core/error.h"
#include "mtl/core/stop_signal.h"
#include "mtl/io/atomic_file.h"
#include "mtl/report/assets.h"
#include "mtl/report/html.h"
#include "mtl/report/run_log.h"
#include "mtl/run/assembler.h"
#include "mtl/run/baselines.h"
#include "mtl/run/run_config.h"
#include "mtl/run/trainer.h"

namespace fs = std::filesystem;

namespace mtl {

namespace {

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

// A combination as a directory name: characters other than letters, digits and ._=,+- become '_'.
std::string file_safe(const std::string& s) {
  std::string out;
  for (char c : s) out += (std::isalnum(static_cast<unsigned char>(c)) || std::string("._=,+-").find(c) != std::string::npos) ? c : '_';
  return out;
}

// Settings that never change the single-task baselines (the fingerprint leaves them out).
bool baseline_neutral(const std::string& key) {
  return key.rfind("weighting", 0) == 0 || key.rfind("model.architecture", 0) == 0 || key.rfind("diagnostics", 0) == 0 ||
         key.rfind("logging", 0) == 0;
}

using Clock = std::chrono::steady_clock;

std::string duration_text(double seconds) {
  char buf[32];
  if (seconds < 90) std::snprintf(buf, sizeof buf, "%.0f s", seconds);
  else if (seconds < 5400) std::snprintf(buf, sizeof buf, "%.0f min", seconds / 60);
  else std::snprintf(buf, sizeof buf, "%.1f h", seconds / 3600);
  return buf;
}

// The sweep's record of finished runs (<dir>/sweep.json), rewritten atomically after each run.
struct SweepState {
  std::string path;
  std::set<std::string> finished;  // run directories

  void load() {
    if (!fs::exists(path)) return;
    std::ifstream in(path);
    nlohmann::json j;
    try {
      in >> j;
    } catch (const nlohmann::json::exception& e) {
      throw Error(path, "not a sweep state file (JSON: " + std::string(e.what()) + "); move it away to start over");
    }
    if (!j.is_object() || !j.contains("finished") || !j["finished"].is_array())
      throw Error(path, "not a sweep state file (expected {\"finished\": [...]}); move it away to start over");
    for (const auto& d : j["finished"])
      if (d.is_string()) finished.insert(d.get<std::string>());
  }
  void save() const {
    nlohmann::json j{{"finished", std::vector<std::string>(finished.begin(), finished.end())}};
    write_file_atomic(path, j.dump(1) + "\n");
  }
};

// The last evaluation's metrics of a finished run: task metrics and delta-m (not losses, gates or per-task delta-m).
std::vector<std::pair<std::string, double>> final_metrics(const RunLog& run) {
  std::vector<std::pair<std::string, double>> out;
  auto evals = run.lines_of("eval");
  if (evals.empty()) throw Error(run.dir, "the run finished without an evaluation (metrics.jsonl has no eval line)");
  for (const auto& [k, v] : evals.back()->values) {
    if (k.size() > 5 && k.compare(k.size() - 5, 5, "/loss") == 0) continue;
    if (k.find("/gate") != std::string::npos || (k != "delta_m" && k.find("delta_m") != std::string::npos)) continue;
    out.emplace_back(k, v);
  }
  return out;
}

std::vector<SweepStat> statistics(const std::vector<std::vector<std::pair<std::string, double>>>& per_seed) {
  std::vector<std::string> order;
  std::map<std::string, std::vector<double>> values;
  for (const auto& seed : per_seed)
    for (const auto& [k, v] : seed) {
      if (!values.count(k)) order.push_back(k);
      if (std::isfinite(v)) values[k].push_back(v);
      else values[k];
    }
  std::vector<SweepStat> out;
  for (const auto& k : order) {
    const auto& xs = values[k];
    SweepStat s{k, std::nan(""), std::nan(""), static_cast<int64_t>(xs.size())};
    if (!xs.empty()) {
      double sum = 0;
      for (double x : xs) sum += x;
      s.mean = sum / xs.size();
      if (xs.size() > 1) {
        double ss = 0;
        for (double x : xs) ss += (x - s.mean) * (x - s.mean);
        s.stdev = std::sqrt(ss / (xs.size() - 1));
      }
    }
    out.push_back(s);
  }
  return out;
}

std::string stat_text(const SweepStat& s) {
  if (s.n == 0) return "";
  const bool percent = s.metric == "delta_m";
  char buf[64];
  if (s.n == 1 || !std::isfinite(s.stdev))
    std::snprintf(buf, sizeof buf, percent ? "%+.2f%%" : "%.4f", s.mean);
  else
    std::snprintf(buf, sizeof buf, percent ? "%+.2f%% ± %.2f" : "%.4f ± %.4f", s.mean, s.stdev);
  return buf;
}

}  // namespace

SweepAxis parse_sweep_axis(const std::string& text, const std::string& where) {
  const size_t eq = text.find('=');
  if (eq == std::string::npos || trim(text.substr(0, eq)).empty())
    throw Error(where, "expected KEY=V1,V2,... (e.g. weighting.method=ew,pcgrad), got '" + text + "'");
  SweepAxis axis;
  axis.key = trim(text.substr(0, eq));
  std::string current;
  int depth = 0;
  const std::string values = text.substr(eq + 1);
  for (size_t i = 0; i <= values.size(); ++i) {
    const char c = i < values.size() ? values[i] : ',';
    if (c == '[' || c == '{') ++depth;
    if (c == ']' || c == '}') --depth;
    if (c == ',' && depth <= 0) {
      if (!trim(current).empty()) axis.values.push_back(trim(current));
      else if (i < values.size() || !axis.values.empty() || !trim(values).empty())
        throw Error(where, "empty value in the grid of '" + axis.key + "' ('" + text + "')");
      current.clear();
    } else {
      current += c;
    }
  }
  if (axis.values.empty()) throw Error(where, "empty grid: '" + axis.key + "' has no values (give KEY=V1,V2,...)");
  for (size_t i = 0; i < axis.values.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (axis.values[i] == axis.values[j])
        throw Error(where, "the value '" + axis.values[i] + "' appears twice in the grid of '" + axis.key + "'");
  if (axis.key == "trainer.seed" || axis.key == "trainer.run_dir" || axis.key == "trainer.resume")
    throw Error(where, "the sweep sets " + axis.key + " itself (use --seeds for seeds, --dir for the directory)");
  return axis;
}

std::vector<SweepRun> sweep_runs(const std::vector<SweepAxis>& grid, int64_t seeds, int64_t base_seed,
                                 const std::string& dir) {
  std::vector<std::vector<std::pair<std::string, std::string>>> combos{{}};
  for (const auto& axis : grid) {
    std::vector<std::vector<std::pair<std::string, std::string>>> next;
    for (const auto& c : combos)
      for (const auto& v : axis.values) {
        auto d = c;
        d.emplace_back(axis.key, v);
        next.push_back(std::move(d));
      }
    combos = std::move(next);
  }
  std::vector<SweepRun> runs;
  std::set<std::string> names;
  for (size_t i = 0; i < combos.size(); ++i) {
    std::string name;
    for (const auto& [k, v] : combos[i]) name += (name.empty() ? "" : ",") + k + "=" + v;
    if (name.empty()) name = "default";
    std::string folder = file_safe(name);
    if (!names.insert(folder).second) folder += "-" + std::to_string(i);  // two values that look alike on disk
    for (int64_t s = 0; s < seeds; ++s)
      runs.push_back({combos[i], base_seed + s, name, (fs::path(dir) / folder / ("seed" + std::to_string(base_seed + s))).string()});
  }
  return runs;
}

std::string sweep_table(const std::vector<std::string>& combinations, const std::vector<std::vector<SweepStat>>& stats) {
  std::vector<std::string> metrics;
  for (const auto& row : stats)
    for (const auto& s : row)
      if (std::find(metrics.begin(), metrics.end(), s.metric) == metrics.end()) metrics.push_back(s.metric);
  std::string md = "| combination | runs |";
  for (const auto& m : metrics) md += " " + m + " |";
  md += "\n|---|---|";
  for (size_t i = 0; i < metrics.size(); ++i) md += "---|";
  md += "\n";
  for (size_t c = 0; c < combinations.size(); ++c) {
    int64_t n = 0;
    for (const auto& s : stats[c]) n = std::max(n, s.n);
    md += "| " + combinations[c] + " | " + std::to_string(n) + " |";
    for (const auto& m : metrics) {
      std::string cell;
      for (const auto& s : stats[c])
        if (s.metric == m) cell = stat_text(s);
      md += " " + cell + " |";
    }
    md += "\n";
  }
  return md;
}

namespace {

// What a sweep will run, from the flags and the config's `sweep:` section.
struct SweepPlan {
  std::vector<SweepRun> runs;
  int64_t seeds = 1;
  std::string dir;
  bool baselines = false;  // single-task baselines for delta-m
};

SweepPlan plan_sweep(const SweepOptions& options) {
  const Config base = Config::load(options.config, options.sets);
  const RunConfig rc = parse_run_config(base);
  const bool flags = !options.grid.empty();
  std::vector<SweepAxis> grid;
  for (const auto& g : flags ? options.grid : rc.sweep.grid)
    grid.push_back(parse_sweep_axis(g, flags ? "--grid " + g : base.root().child("sweep").where("grid")));
  SweepPlan plan;
  plan.seeds = options.seeds > 0 ? options.seeds : rc.sweep.seeds;
  if (grid.empty() && plan.seeds < 2)
    throw Error("mtl sweep", "nothing to sweep: give --grid KEY=V1,V2,... (or sweep.grid in the config) and/or --seeds N > 1");
  plan.dir = !options.dir.empty() ? options.dir : !rc.sweep.dir.empty() ? rc.sweep.dir : rc.trainer.run_dir + ".sweep";
  plan.runs = sweep_runs(grid, plan.seeds, rc.trainer.seed, plan.dir);
  plan.baselines = options.baselines && rc.tasks.size() >= 2 && !rc.baselines.path.empty();
  return plan;
}

// The overrides of one run: the sweep's --set flags, the run's settings and its seed.
std::vector<std::string> run_sets(const SweepOptions& options, const SweepRun& r) {
  std::vector<std::string> sets = options.sets;
  for (const auto& [k, v] : r.settings) sets.push_back(k + "=" + v);
  sets.push_back("trainer.seed=" + std::to_string(r.seed));
  return sets;
}

// Every combination is built once before anything trains: a key that does not exist or a bad value stops the
// sweep now, with the --set flag that carries it.
void check_combinations(const SweepOptions& options, const std::vector<SweepRun>& runs) {
  std::set<std::string> checked;
  for (const auto& r : runs)
    if (checked.insert(r.combination).second) assemble(Config::load(options.config, run_sets(options, r)));
}

// The baselines file of run r's seed (and of its settings that change baselines), trained when missing; "" when
// Ctrl-C stopped their training.
std::string ensure_baselines(const SweepOptions& options, const SweepPlan& plan, const SweepRun& r) {
  std::string group = "seed" + std::to_string(r.seed);
  for (const auto& [k, v] : r.settings)
    if (!baseline_neutral(k)) group += "," + k + "=" + v;
  const std::string dir = (fs::path(plan.dir) / "baselines" / file_safe(group)).string();
  const std::string path = default_baselines_path(dir);
  if (fs::exists(path)) return path;
  std::cerr << "mtl sweep: single-task baselines for " << group << " (once per seed)\n";
  std::vector<std::string> sets = run_sets(options, r);
  sets.push_back("trainer.run_dir=" + dir);
  sets.push_back("baselines=auto");
  Run b = assemble(Config::load(options.config, sets));
  return run_baselines(b.config, BaselinesRunOptions{options.progress}).interrupted ? "" : path;
}

// Trains (or continues, from its checkpoint) one run; false when Ctrl-C stopped it.
bool train_run(const SweepOptions& options, const std::vector<std::string>& sets) {
  const RunConfig checked = parse_run_config(Config::load(options.config, sets));
  const std::string resume = auto_resume_dir(checked.trainer);
  Run run = assemble(Config::load(options.config, sets), AssembleOptions{resume});
  if (stop_requested()) return false;
  return !train(run, TrainRunOptions{resume, options.progress}).interrupted;
}

nlohmann::json number_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }

// Aggregates every combination's seeds from the runs' own logs into `summary` and writes summary.md,
// summary.json and report.html.
void write_summary(const SweepOptions& options, const SweepPlan& plan, SweepSummary& summary) {
  const auto& runs = plan.runs;
  std::vector<RunLog> logs;
  nlohmann::json json{{"dir", plan.dir}, {"config", options.config}, {"seeds", plan.seeds}};
  json["combinations"] = nlohmann::json::array();
  for (size_t i = 0; i < runs.size();) {
    const std::string combo = runs[i].combination;
    std::vector<std::vector<std::pair<std::string, double>>> per_seed;
    nlohmann::json entry{{"name", combo}, {"runs", nlohmann::json::array()}, {"settings", nlohmann::json::object()}};
    for (const auto& [k, v] : runs[i].settings) entry["settings"][k] = v;
    for (; i < runs.size() && runs[i].combination == combo; ++i) {
      RunLog log = read_run_log(runs[i].run_dir);
      log.name = combo + " seed " + std::to_string(runs[i].seed);
      per_seed.push_back(final_metrics(log));
      entry["runs"].push_back(runs[i].run_dir);
      logs.push_back(std::move(log));
    }
    summary.combinations.push_back(combo);
    summary.stats.push_back(statistics(per_seed));
    for (const auto& s : summary.stats.back())
      entry["metrics"][s.metric] = {{"mean", number_or_null(s.mean)}, {"std", number_or_null(s.stdev)}, {"n", s.n}};
    json["combinations"].push_back(entry);
  }
  double train_seconds = 0;
  for (const auto& l : logs)
    for (const LogLine* e : l.lines_of("epoch"))
      if (std::isfinite(e->get("seconds"))) train_seconds += e->get("seconds");
  json["train_seconds"] = train_seconds;
  summary.markdown = sweep_table(summary.combinations, summary.stats);
  const std::string header = "Sweep of " + options.config + " (" + std::to_string(runs.size()) + " runs, " +
                             std::to_string(plan.seeds) + " seed(s); mean ± sample standard deviation over seeds; " +
                             duration_text(train_seconds) + " of training)\n\n";
  write_file_atomic((fs::path(plan.dir) / "summary.md").string(), header + summary.markdown);
  write_file_atomic((fs::path(plan.dir) / "summary.json").string(), json.dump(2) + "\n");
  ReportOptions report{"mtl sweep: " + options.config, "<h2>Sweep</h2>\n<p>" + html_escape(header) + "</p>\n" +
                                                           markdown_table_html(summary.markdown)};
  if (*chart_library().js != '\0')
    write_file_atomic((fs::path(plan.dir) / "report.html").string(), report_html(logs, report));
  else
    std::cerr << "mtl sweep: no report.html: this build has no charting library (tools/fetch_uplot.sh, then rebuild)\n";
}

}  // namespace

SweepSummary run_sweep(const SweepOptions& options) {
  const SweepPlan plan = plan_sweep(options);
  SweepSummary summary;
  summary.dir = plan.dir;
  fs::create_directories(plan.dir);
  SweepState state{(fs::path(plan.dir) / "sweep.json").string(), {}};
  state.load();
  size_t pending = 0;
  for (const auto& r : plan.runs) pending += !state.finished.count(r.run_dir);
  if (pending > 0) check_combinations(options, plan.runs);

  size_t done_here = 0;
  double seconds_here = 0;
  StopSignalScope stop_signals;  // Ctrl-C between runs stops the sweep before the next one
  for (size_t i = 0; i < plan.runs.size(); ++i) {
    const SweepRun& r = plan.runs[i];
    if (state.finished.count(r.run_dir)) continue;
    summary.interrupted = true;  // until this run is done
    if (stop_requested()) return summary;
    std::vector<std::string> sets = run_sets(options, r);
    if (plan.baselines) {
      const std::string baselines = ensure_baselines(options, plan, r);
      if (baselines.empty()) return summary;
      sets.push_back("baselines=" + baselines);
    }
    sets.push_back("trainer.run_dir=" + r.run_dir);
    sets.push_back("trainer.resume=auto");
    const size_t left = pending - done_here;
    const std::string eta = done_here > 0 ? ", ETA " + duration_text(seconds_here / done_here * left) : "";
    std::cerr << "mtl sweep: run " << (i + 1) << "/" << plan.runs.size() << ": " << r.combination << " seed " << r.seed
              << " (" << left << " left" << eta << ") -> " << r.run_dir << "\n";
    const auto start = Clock::now();
    if (!train_run(options, sets)) return summary;
    summary.interrupted = false;
    seconds_here += std::chrono::duration<double>(Clock::now() - start).count();
    ++done_here;
    state.finished.insert(r.run_dir);
    state.save();
  }
  write_summary(options, plan, summary);
  return summary;
}

}  // namespace mtl
