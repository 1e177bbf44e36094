// Metric interface: accumulate over batches (sufficient statistics, in double), then compute once.
// Outputs are the head's raw outputs (logits / values); targets as described by LabelKind.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>
#include <string>
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
};

struct MetricEntry {
  std::function<std::unique_ptr<Metric>(const ConfigNode& options, const LabelInfo& label)> make;
  std::vector<LabelKind> label_kinds;
};
Registry<MetricEntry>& metric_registry();

}  // namespace mtl
