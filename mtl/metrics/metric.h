// Metric interface: accumulate over batches (sufficient statistics, in double), then compute once.
// Outputs are the head's raw outputs (logits / values); targets as described by LabelKind.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "mtl/core/batch.h"
#include "mtl/core/registry.h"

namespace mtl {

class ConfigNode;

class Metric {
 public:
  virtual ~Metric() = default;
  virtual void reset() = 0;
  virtual void update(const at::Tensor& output, const at::Tensor& target) = 0;
  virtual double compute() const = 0;
  virtual bool higher_is_better() const = 0;
  /// Name used in logs, e.g. "accuracy", "top3_accuracy".
  virtual std::string name() const = 0;
  /// The accumulated statistics as numbers (counts and sums, exact in double up to 2^53), so that the parts of
  /// an evaluation split over processes can be combined: a fresh metric that merges the states of metrics
  /// updated on disjoint parts of the data, in order, computes what one metric updated on all of them would.
  /// The default refuses (mtl::Error): a metric of one's own implements both to run in a distributed evaluation.
  virtual std::vector<double> state() const;
  /// Adds another part's state() (of a metric with the same options); mtl::Error when the length differs.
  virtual void merge(const std::vector<double>& part);
};

/// Outputs and targets of one shape as CPU doubles, detached (value metrics: mae, rmse, abs_err, ...); a
/// shape mismatch is an error naming `metric`.
std::pair<at::Tensor, at::Tensor> same_shape_doubles(const char* metric, const at::Tensor& output,
                                                     const at::Tensor& target);

/// For merge(): mtl::Error naming the metric unless `part` has `expected` numbers.
void check_metric_part(const Metric& metric, const std::vector<double>& part, size_t expected);
/// merge() of a metric whose state() is its integer counts in this order: adds part[i] to *counts[i].
void merge_counts(const Metric& metric, const std::vector<double>& part, std::initializer_list<int64_t*> counts);

struct MetricEntry {
  std::function<std::unique_ptr<Metric>(const ConfigNode& options, const LabelInfo& label)> make;
  std::vector<LabelKind> label_kinds;
};
Registry<MetricEntry>& metric_registry();

}  // namespace mtl
