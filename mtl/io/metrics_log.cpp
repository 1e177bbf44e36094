#include "mtl/io/metrics_log.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "mtl/core/error.h"

namespace mtl {

MetricsLog::MetricsLog(const std::string& path) : path_(path), out_(path, std::ios::app) {
  if (!out_) throw Error(path, "cannot open metrics log for writing");
}

std::string metrics_json(const std::string& event, int64_t step, int64_t epoch, const MetricValues& values) {
  nlohmann::ordered_json j;
  j["event"] = event;
  j["step"] = step;
  j["epoch"] = epoch;
  for (const auto& [k, v] : values) {
    if (std::isfinite(v))
      j[k] = v;
    else
      j[k] = nullptr;  // JSON has no NaN/inf
  }
  return j.dump();
}

void MetricsLog::write(const std::string& event, int64_t step, int64_t epoch, const MetricValues& values) {
  if (!out_.is_open()) return;
  out_ << metrics_json(event, step, epoch, values) << '\n';
  out_.flush();
  if (tensorboard_)
    for (const auto& [k, v] : values)
      if (std::isfinite(v)) tensorboard_->scalar(event + "/" + k, step, static_cast<float>(v));
}

void MetricsLog::mirror_to_tensorboard(const std::string& dir) {
  if (out_.is_open()) tensorboard_ = std::make_unique<TfEventsWriter>(dir);
}

}  // namespace mtl
