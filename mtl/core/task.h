// TaskSpec: one task of a multi-task run, resolved from its `tasks.<name>` config section:
// which label field it learns, its head type, loss, loss weight and metrics.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mtl/core/batch.h"
#include "mtl/core/loss.h"

namespace mtl {

class Metric;  // mtl/metrics/metric.h

struct TaskSpec {
  std::string name;
  std::string dataset;  // the `datasets:` entry it learns from; empty with a single `data:` section
  std::string head_type;
  LabelInfo label;
  double weight = 1.0;
  std::string loss_type;
  LossFn loss;
  /// Fresh metric instances for one evaluation pass.
  std::function<std::vector<std::unique_ptr<Metric>>()> make_metrics;
};

}  // namespace mtl
