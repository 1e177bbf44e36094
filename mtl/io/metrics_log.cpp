#include "mtl/io/metrics_log.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "mtl/core/error.h"

namespace fs = std::filesystem;

namespace mtl {

MetricsLog::MetricsLog(const std::string& path) : path_(path), out_(path, std::ios::app) {
  if (!out_) throw Error(path, "cannot open metrics log for writing");
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  bytes_ = ec ? 0 : static_cast<int64_t>(size);
}

void truncate_log_for_resume(const std::string& path, int64_t bytes) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) return;
  int64_t keep = static_cast<int64_t>(size);
  if (bytes >= 0) keep = std::min(keep, bytes);
  // End at a line break: read backwards from `keep` in blocks (a long run's log is large; only its tail matters).
  std::ifstream in(path, std::ios::binary);
  for (int64_t end = keep; end > 0;) {
    const int64_t begin = std::max<int64_t>(0, end - 4096);
    std::string block(static_cast<size_t>(end - begin), '\0');
    in.seekg(begin);
    in.read(block.data(), end - begin);
    if (!in) throw Error(path, "cannot read the metrics log");
    const size_t last = block.rfind('\n');
    if (last != std::string::npos) {
      keep = begin + static_cast<int64_t>(last) + 1;
      break;
    }
    end = begin;
    if (end == 0) keep = 0;  // no line break at all
  }
  if (keep == static_cast<int64_t>(size)) return;
  fs::resize_file(path, static_cast<uintmax_t>(keep), ec);
  if (ec) throw Error(path, "cannot cut the metrics log back to the checkpoint: " + ec.message());
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
  const std::string line = metrics_json(event, step, epoch, values) + '\n';
  errno = 0;
  out_ << line;
  out_.flush();
  if (!out_)
    throw Error(path_, std::string("cannot write the metrics log") +
                           (errno != 0 ? std::string(": ") + std::strerror(errno) : std::string(" (disk full?)")));
  bytes_ += static_cast<int64_t>(line.size());
  if (tensorboard_)
    for (const auto& [k, v] : values)
      if (std::isfinite(v)) tensorboard_->scalar(event + "/" + k, step, static_cast<float>(v));
}

void MetricsLog::mirror_to_tensorboard(const std::string& dir) {
  if (out_.is_open()) tensorboard_ = std::make_unique<TfEventsWriter>(dir);
}

}  // namespace mtl
