// delta-m: how much better (or worse) a multi-task model is than single-task models of the same budget,
// as one number (Maninis et al. 2019, as used by LibMTL), with the sign convention stated here once:
//
//   delta_m % = 100 / K * sum over (task t, metric k) of  s_k * (M_mt[t,k] - M_b[t,k]) / |M_b[t,k]|
//   s_k = +1 when higher is better (accuracy, F1, R^2), -1 when lower is better (MAE, RMSE)
//
// so a POSITIVE delta-m means the multi-task model is better than the single-task baselines on average.
// (LibMTL prints the same quantity; some papers report its negation, "lower is better".) K counts the
// (task, metric) pairs that enter the mean; losses do not enter, only the configured metrics.
//
// A metric whose baseline is 0 has no relative difference: it is skipped and listed in `skipped`. A task
// or metric the baseline lacks is listed in `missing`, and then no delta-m is given at all (a mean over
// some of the tasks would look like a result about all of them).
//
// Plain data in, plain data out: no torch, so the formula is testable against hand-computed numbers.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace mtl {

/// One metric value of one task.
struct MetricScore {
  std::string task;
  std::string metric;
  double value = 0.0;
  bool higher_is_better = true;
};

struct DeltaM {
  bool valid = false;   // false when something was missing or nothing could be compared
  double percent = 0.0; // the mean over the compared pairs, in percent; positive = multi-task better
  int64_t terms = 0;    // K: (task, metric) pairs in the mean
  std::vector<std::pair<std::string, double>> per_task;  // the same mean restricted to each task, in task order
  std::vector<std::string> missing;  // "task" or "task/metric" that the baseline lacks
  std::vector<std::string> skipped;  // "task/metric" left out because the baseline value is 0
};

/// delta-m of `multi_task` against `baseline` (matched by task and metric name; the direction of each
/// metric is taken from `multi_task`). Pairs that the baseline has but `multi_task` lacks are ignored.
DeltaM delta_m(const std::vector<MetricScore>& multi_task, const std::vector<MetricScore>& baseline);

/// "+1.23%" / "-0.40%" (two decimals, always signed).
std::string format_percent(double percent);

/// One line for people: "delta-m +1.23% vs single-task baselines over 4 metrics (positive = multi-task
/// better)", with skipped metrics named; or why there is none.
std::string describe_delta_m(const DeltaM& d);

}  // namespace mtl
