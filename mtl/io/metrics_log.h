// Metrics log: one JSON object per line (JSONL) in the run directory, e.g.
//   {"event":"train","step":50,"epoch":0,"lr":0.01,"left/loss":0.61,"left/weight":1.0,...}
//   {"event":"eval","step":469,"epoch":0,"left/loss":0.41,"left/accuracy":0.85,...}
// With mirror_to_tensorboard, every finite value also becomes a TensorBoard scalar "<event>/<key>" at its step
// ("train/left/loss", "eval/left/accuracy"), so the two always agree.
#pragma once

#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "mtl/io/tfevents.h"

namespace mtl {

using MetricValues = std::vector<std::pair<std::string, double>>;

class MetricsLog {
 public:
  MetricsLog() = default;
  /// Opens `path` for appending; throws mtl::Error naming it on failure.
  explicit MetricsLog(const std::string& path);
  void write(const std::string& event, int64_t step, int64_t epoch, const MetricValues& values);
  bool is_open() const { return out_.is_open(); }
  /// From now on, also write each value as a scalar to a new TensorBoard event file in `dir`.
  void mirror_to_tensorboard(const std::string& dir);
  /// The event file being written, or "" without one.
  std::string tensorboard_file() const { return tensorboard_ ? tensorboard_->path() : ""; }

 private:
  std::string path_;
  std::ofstream out_;
  std::unique_ptr<TfEventsWriter> tensorboard_;
};

/// One JSON object (no newline) for `values`, with "event", "step", "epoch" first.
std::string metrics_json(const std::string& event, int64_t step, int64_t epoch, const MetricValues& values);

}  // namespace mtl
