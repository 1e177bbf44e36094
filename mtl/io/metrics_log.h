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
  /// Appends one line and flushes it; throws mtl::Error naming the file when it cannot be written (disk full,
  /// file size limit).
  void write(const std::string& event, int64_t step, int64_t epoch, const MetricValues& values);
  /// Bytes in the file so far (what a checkpoint records, so that a resumed run can cut the log back to it).
  int64_t bytes() const { return bytes_; }
  bool is_open() const { return out_.is_open(); }
  /// From now on, also write each value as a scalar to a new TensorBoard event file in `dir`.
  void mirror_to_tensorboard(const std::string& dir);
  /// The event file being written, or "" without one.
  std::string tensorboard_file() const { return tensorboard_ ? tensorboard_->path() : ""; }

 private:
  std::string path_;
  std::ofstream out_;
  int64_t bytes_ = 0;
  std::unique_ptr<TfEventsWriter> tensorboard_;
};

/// Before a resumed run appends to the log at `path`: cuts it back to the first `bytes` bytes (what it held when
/// the checkpoint being resumed was written: the lines after it will be written again), or, with bytes < 0
/// (a checkpoint that did not record it), only drops an unfinished last line (a process killed mid-write).
/// Nothing happens when the file is missing or already shorter.
void truncate_log_for_resume(const std::string& path, int64_t bytes);

/// One JSON object (no newline) for `values`, with "event", "step", "epoch" first.
std::string metrics_json(const std::string& event, int64_t step, int64_t epoch, const MetricValues& values);

}  // namespace mtl
