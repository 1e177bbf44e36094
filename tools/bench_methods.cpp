// mtl_bench --methods: what every gradient-based weighting method costs against equal weighting, in both
// gradient spaces (weighting.space: parameters | representation), at each worker count, on MultiLeNet and on
// the SOTU Transformer. Every cell is `mtl train` itself (a child process of tools/bench_train.cpp's --run
// mode with --set weighting=...), timed over the same steps as EW's row; "vs EW" is the step time over EW's
// at the same worker count, measured in the same invocation.
//   build/mtl_bench --methods all [--models lenet,sotu] [--method-threads 1,2] [--steps 40] [--repeats 1]
#include <algorithm>
#include <iomanip>
#include <iostream>
#include <fstream>
#include <map>
#include <sstream>

#include "mtl/core/error.h"
#include "mtl/run/run_config.h"
#include "tools/bench_common.h"

namespace mtl_bench {

namespace {

const std::vector<std::string> kGradientMethods{"mgda",    "pcgrad",   "gradvac", "graddrop", "cagrad",
                                                "imtl",    "nash_mtl", "aligned_mtl", "upgrad", "dualproj",
                                                "config",  "db_mtl",   "gradnorm"};

// "cagrad:c=0.4" in `space` -> "{method: cagrad, c: 0.4, space: representation}". DB-MTL is defined in
// representation space only without its moving average (beta: 0), which is then its representation form.
std::string weighting_yaml(const std::string& spec, const std::string& space) {
  std::istringstream in(spec);
  std::string name, option;
  std::getline(in, name, ':');
  std::string yaml = "{method: " + name;
  bool beta = false;
  while (std::getline(in, option, ':')) {
    const auto eq = option.find('=');
    if (eq == std::string::npos) throw mtl::Error("--methods", "expected key=value in '" + spec + "', got '" + option + "'");
    yaml += ", " + option.substr(0, eq) + ": " + option.substr(eq + 1);
    beta = beta || option.substr(0, eq) == "beta";
  }
  if (name == "db_mtl" && space == "representation" && !beta) yaml += ", beta: 0";
  if (!space.empty()) yaml += ", space: " + space;
  return yaml + "}";
}

struct Cell {
  std::string model, method, space;  // space "" for EW
  int workers = 1;
  std::string command;
  std::vector<json> runs;
  const json& median() {
    std::sort(runs.begin(), runs.end(), [](const json& x, const json& y) { return num(x, "step_ms") < num(y, "step_ms"); });
    return runs[runs.size() / 2];
  }
};

std::vector<Cell> plan_cells(const BenchArgs& a) {
  std::vector<std::string> methods = a.methods;
  if (methods.size() == 1 && methods[0] == "all") methods = kGradientMethods;
  std::vector<Cell> cells;
  for (const std::string& model : a.models)
    for (int workers : a.method_threads) {
      auto add = [&](const std::string& method, const std::string& space) {
        Cell c{model, method, space, workers, "", {}};
        c.command = mtl_command(a, model, workers, 1, {"weighting=" + weighting_yaml(method, space)});
        cells.push_back(std::move(c));
      };
      add("ew", "");
      for (const std::string& m : methods)
        for (const std::string space : {"parameters", "representation"}) add(m, space);
    }
  return cells;
}

std::string pad(const std::string& s, int width, bool left = true) {
  std::ostringstream out;
  out << (left ? std::left : std::right) << std::setw(width) << s;
  return out.str();
}

}  // namespace

int methods_driver(BenchArgs a) {
  if (a.quick) a.steps = 3, a.warmup = 2, a.repeats = 1, a.max_wait = 0, a.train_size = 2048;
  if (a.method_threads.empty()) a.method_threads = {1, static_cast<int>(mtl::physical_cores())};
  std::sort(a.method_threads.begin(), a.method_threads.end());
  a.method_threads.erase(std::unique(a.method_threads.begin(), a.method_threads.end()), a.method_threads.end());
  for (const std::string& model : a.models) model_spec(model, a);  // rejects an unknown name first
  std::vector<Cell> cells = plan_cells(a);
  std::cerr << "mtl_bench --methods: " << cells.size() << " configurations, " << a.warmup << " warmup + " << a.steps
            << " timed steps, " << a.repeats << " run(s) each\n";
  for (int rep = 0; rep < a.repeats; ++rep)
    for (Cell& c : cells) {
      std::cerr << "  [" << rep + 1 << "/" << a.repeats << "] " << c.model << " workers=" << c.workers << " "
                << weighting_yaml(c.method, c.space) << " ... " << std::flush;
      wait_until_quiet(a.max_wait);
      const json& r = c.runs.emplace_back(run_child(c.command));
      std::cerr << fixed(num(r, "samples_per_s"), 0) << " samples/s, " << fixed(num(r, "step_ms"), 1) << " ms/step\n";
    }
  // Step time of EW per (model, workers): the reference of every other cell.
  std::map<std::pair<std::string, int>, double> ew;
  for (Cell& c : cells)
    if (c.method == "ew") ew[{c.model, c.workers}] = num(c.median(), "step_ms");
  std::ostringstream out;
  out << "\nweighting-method cost: mtl train, " << a.warmup << " warmup + " << a.steps << " timed steps, median of "
      << a.repeats << " run(s); workers x 1 intra-op thread; allocator: " << allocator_label(a) << "\n"
      << "cells: step time relative to EW at the same worker count (samples/s in the JSON)\n";
  json rows = json::array();
  for (const std::string& model : a.models) {
    out << "\n" << model_spec(model, a).label << "\n| method |";
    for (int w : a.method_threads)
      out << " params " << w << "w | repr. " << w << "w |";
    out << "\n|---|";
    for (size_t i = 0; i < a.method_threads.size(); ++i) out << "---|---|";
    out << "\n| ew (ms/step, samples/s) |";
    for (int w : a.method_threads) {
      for (Cell& c : cells)
        if (c.model == model && c.workers == w && c.method == "ew")
          out << " " << fixed(num(c.median(), "step_ms"), 1) << " ms, " << fixed(num(c.median(), "samples_per_s"), 0)
              << "/s | |";
    }
    std::vector<std::string> methods;
    for (const Cell& c : cells)
      if (c.model == model && c.method != "ew" && std::find(methods.begin(), methods.end(), c.method) == methods.end())
        methods.push_back(c.method);
    for (const std::string& m : methods) {
      out << "\n| " << m << " |";
      for (int w : a.method_threads)
        for (const std::string space : {"parameters", "representation"})
          for (Cell& c : cells)
            if (c.model == model && c.workers == w && c.method == m && c.space == space) {
              const json& r = c.median();
              const double ratio = num(r, "step_ms") / ew[{model, w}];
              out << " " << fixed(ratio, 2) << "x |";
              json row = r;
              row.update({{"method", m}, {"space", space}, {"vs_ew", ratio}});
              rows.push_back(row);
            }
    }
    out << "\n";
  }
  std::cout << out.str() << std::flush;
  if (!a.json_path.empty()) {
    json j{{"warmup", a.warmup}, {"steps", a.steps}, {"repeats", a.repeats}, {"rows", rows}};
    for (auto& [key, ms] : ew) j["ew_step_ms"][key.first + ":" + std::to_string(key.second)] = ms;
    if (!(std::ofstream(a.json_path) << j.dump(2) << "\n")) throw mtl::Error(a.json_path, "cannot write the results");
  }
  return 0;
}

}  // namespace mtl_bench
