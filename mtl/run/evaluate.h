// Evaluation: per-task mean loss and metrics of a model on a dataset (no gradients, eval mode).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "mtl/core/task.h"
#include "mtl/data/dataset.h"
#include "mtl/io/metrics_log.h"
#include "mtl/metrics/delta_m.h"
#include "mtl/model/multi_task_model.h"

namespace mtl {

struct MetricResult {
  std::string name;
  double value = 0.0;
  bool higher_is_better = true;
};

struct TaskResult {
  std::string task;
  double loss = 0.0;
  int64_t examples = 0;
  std::vector<MetricResult> metrics;
  /// Expert architectures: the task's gate weight per expert it mixes, averaged over the evaluated examples
  /// (the metrics log's "task/gate<e>"); empty otherwise.
  std::vector<double> gates;
};

struct EvalResult {
  std::vector<TaskResult> tasks;
  /// delta-m against single-task baselines, when a matching baselines file was found (attach_delta_m).
  std::optional<DeltaM> delta_m;
  /// Flat "task/metric" values for the metrics log; with a valid delta-m also "delta_m" and "task/delta_m".
  MetricValues flat() const;
  /// The metric values (losses excluded) as delta-m input.
  std::vector<MetricScore> scores() const;
  /// Value of `metric` for `task`; throws if absent.
  double value(const std::string& task, const std::string& metric) const;
};

class ProcessGroup;

/// Per-task mean loss and metrics over `data`, in batches of `batch_size` in the data's order. With a process
/// `group`, every rank evaluates its contiguous share of the batches and the ranks combine their losses and
/// metric statistics (Metric::state/merge) in rank order, so every rank returns the same result, equal to the
/// one-process evaluation's (counts exactly, sums up to rounding). Every rank of the group must call it.
EvalResult evaluate(MultiTaskModel& model, const std::vector<TaskSpec>& tasks, const Dataset& data,
                    int64_t batch_size, ProcessGroup* group = nullptr);

/// A small aligned table: one row per task, columns loss and each metric (and delta_m% per task, with a
/// closing delta-m line, when `result.delta_m` is set).
std::string format_eval_table(const EvalResult& result);

}  // namespace mtl
