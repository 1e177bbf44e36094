// Metrics log: one JSON object per line (JSONL) in the run directory, e.g.
//   {"event":"train","step":50,"epoch":0,"lr":0.01,"left/loss":0.61,"left/weight":1.0,...}
//   {"event":"eval","step":469,"epoch":0,"left/loss":0.41,"left/accuracy":0.85,...}
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace mtl {

using MetricValues = std::vector<std::pair<std::string, double>>;

class MetricsLog {
 public:
  MetricsLog() = default;
  /// Opens `path` for appending; throws mtl::Error naming it on failure.
  explicit MetricsLog(const std::string& path);
  void write(const std::string& event, int64_t step, int64_t epoch, const MetricValues& values);
  bool is_open() const { return out_.is_open(); }

 private:
  std::string path_;
  std::ofstream out_;
};

/// One JSON object (no newline) for `values`, with "event", "step", "epoch" first.
std::string metrics_json(const std::string& event, int64_t step, int64_t epoch, const MetricValues& values);

}  // namespace mtl
