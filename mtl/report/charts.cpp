#include "mtl/report/charts.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <functional>
#include <map>

namespace mtl {

namespace {

struct Curve {
  std::string label;
  std::map<double, double> points;  // x -> y (a step logged twice, e.g. after a resume: the last value)
};

// The curves on one x axis: the union of their x values, thinned to max_points.
Chart align(std::string section, std::string title, std::string x_label, const std::vector<Curve>& curves,
            size_t max_points) {
  Chart c{std::move(section), std::move(title), std::move(x_label), {}, {}};
  std::vector<double> xs;
  for (const auto& cv : curves)
    for (const auto& p : cv.points) xs.push_back(p.first);
  std::sort(xs.begin(), xs.end());
  xs.erase(std::unique(xs.begin(), xs.end()), xs.end());
  if (max_points > 1 && xs.size() > max_points) {
    const size_t stride = (xs.size() + max_points - 2) / (max_points - 1);
    std::vector<double> kept;
    for (size_t i = 0; i < xs.size(); i += stride) kept.push_back(xs[i]);
    if (kept.back() != xs.back()) kept.push_back(xs.back());
    xs = std::move(kept);
  }
  c.x = xs;
  for (const auto& cv : curves) {
    ChartSeries s{cv.label, std::vector<double>(xs.size(), std::numeric_limits<double>::quiet_NaN())};
    for (size_t i = 0; i < xs.size(); ++i) {
      auto it = cv.points.find(xs[i]);
      if (it != cv.points.end()) s.y[i] = it->second;
    }
    c.series.push_back(std::move(s));
  }
  return c;
}

std::string label_of(const std::vector<RunLog>& runs, const RunLog& run, const std::string& what) {
  if (runs.size() == 1) return what;
  return what.empty() ? run.name : run.name + ": " + what;
}

// One curve per run and key, from the lines of `event`; keys[i] is plotted under names[i] (empty: the run's name).
// x is the step, or for evaluations and epochs the 1-based epoch.
void add_curves(std::vector<Curve>& out, const std::vector<RunLog>& runs, const RunLog& run, const std::string& event,
                const std::vector<std::string>& keys, const std::vector<std::string>& names) {
  const bool by_epoch = event == "eval" || event == "epoch";
  for (size_t k = 0; k < keys.size(); ++k) {
    Curve cv{label_of(runs, run, names[k]), {}};
    for (const LogLine* l : run.lines_of(event)) {
      const double y = l->get(keys[k]);
      if (std::isfinite(y)) cv.points[by_epoch ? double(l->epoch + 1) : double(l->step)] = y;
    }
    if (!cv.points.empty()) out.push_back(std::move(cv));
  }
}

// A chart of `key_of(task)` for every task of every run (series "task", or "run: task" for several runs).
void per_task_chart(std::vector<Chart>& charts, const std::vector<RunLog>& runs, const std::string& section,
                    const std::string& title, const std::string& event,
                    const std::function<std::string(const std::string&)>& key_of, size_t max_points) {
  std::vector<Curve> curves;
  for (const auto& run : runs) {
    std::vector<std::string> keys, names;
    for (const auto& t : run.tasks()) {
      keys.push_back(key_of(t));
      names.push_back(t);
    }
    add_curves(curves, runs, run, event, keys, names);
  }
  if (!curves.empty())
    charts.push_back(align(section, title, event == "eval" || event == "epoch" ? "epoch" : "step", curves, max_points));
}

// A chart of one run-level key (series: one per run).
void per_run_chart(std::vector<Chart>& charts, const std::vector<RunLog>& runs, const std::string& section,
                   const std::string& title, const std::string& event, const std::string& key, size_t max_points) {
  std::vector<Curve> curves;
  for (const auto& run : runs) add_curves(curves, runs, run, event, {key}, {runs.size() == 1 ? title : ""});
  if (!curves.empty())
    charts.push_back(align(section, title, event == "eval" || event == "epoch" ? "epoch" : "step", curves, max_points));
}

// The metric names of the runs' evaluations ("accuracy", "macro_f1", "loss", ...), in first-seen order.
std::vector<std::string> eval_metrics(const std::vector<RunLog>& runs) {
  std::vector<std::string> out;
  for (const auto& run : runs) {
    const auto tasks = run.tasks();
    for (const LogLine* l : run.lines_of("eval"))
      for (const auto& kv : l->values) {
        const size_t slash = kv.first.find('/');
        if (slash == std::string::npos) continue;
        const std::string task = kv.first.substr(0, slash), metric = kv.first.substr(slash + 1);
        if (std::find(tasks.begin(), tasks.end(), task) == tasks.end()) continue;
        if (metric.rfind("gate", 0) == 0 || metric == "delta_m") continue;
        if (std::find(out.begin(), out.end(), metric) == out.end()) out.push_back(metric);
      }
  }
  return out;
}

// The task pairs of the runs' diagnostics lines ("a/b" of the keys cosine/a/b).
std::vector<std::string> cosine_pairs(const RunLog& run) {
  std::vector<std::string> out;
  for (const LogLine* l : run.lines_of("diagnostics"))
    for (const auto& kv : l->values)
      if (kv.first.rfind("cosine/", 0) == 0 && std::find(out.begin(), out.end(), kv.first.substr(7)) == out.end())
        out.push_back(kv.first.substr(7));
  return out;
}

}  // namespace

std::vector<Chart> report_charts(const std::vector<RunLog>& runs, size_t max_points) {
  std::vector<Chart> charts;
  const auto suffix = [](const std::string& s) { return [s](const std::string& t) { return t + "/" + s; }; };
  // Losses and weights of every step (`weights` lines, trainer.log_weights) when the runs have them, else the
  // `train` lines of every log_interval steps.
  const bool every_step = std::any_of(runs.begin(), runs.end(), [](const RunLog& r) { return !r.lines_of("weights").empty(); });
  const std::string steps = every_step ? "weights" : "train";
  per_task_chart(charts, runs, "Training", "training loss", steps, suffix("loss"), max_points);
  per_task_chart(charts, runs, "Training", "task weight", steps, suffix("weight"), max_points);
  per_run_chart(charts, runs, "Training", "learning rate", "train", "lr", max_points);
  for (const auto& m : eval_metrics(runs))
    per_task_chart(charts, runs, "Evaluation", "test " + m, "eval", suffix(m), max_points);
  per_run_chart(charts, runs, "Evaluation", "delta-m (%)", "eval", "delta_m", max_points);
  // Gradient diagnostics: cosines per pair, conflict share, gradient norms.
  std::vector<Curve> cosines;
  for (const auto& run : runs) {
    std::vector<std::string> keys, names;
    for (const auto& p : cosine_pairs(run)) {
      keys.push_back("cosine/" + p);
      names.push_back(p.substr(0, p.find('/')) + " x " + p.substr(p.find('/') + 1));
    }
    add_curves(cosines, runs, run, "diagnostics", keys, names);
  }
  if (!cosines.empty()) charts.push_back(align("Gradient diagnostics", "gradient cosine", "step", cosines, max_points));
  per_run_chart(charts, runs, "Gradient diagnostics", "conflict share", "diagnostics", "conflict_share", max_points);
  std::vector<Curve> norms;
  for (const auto& run : runs) {
    std::vector<std::string> keys, names;
    for (const auto& t : run.tasks()) {
      keys.push_back(t + "/grad_norm");
      names.push_back(t);
    }
    keys.push_back("combined_norm");
    names.push_back("combined update");
    add_curves(norms, runs, run, "diagnostics", keys, names);
  }
  if (!norms.empty()) charts.push_back(align("Gradient diagnostics", "gradient norm", "step", norms, max_points));
  per_run_chart(charts, runs, "Throughput", "examples/s", "epoch", "examples_per_second", max_points);
  return charts;
}

}  // namespace mtl
