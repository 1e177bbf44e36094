// Progress display: a redrawn bar with rate and ETA on a terminal, plain periodic lines otherwise
// (logs, CI). Writes to stderr so stdout stays clean for results.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace mtl {

class Progress {
 public:
  /// `enabled` false prints nothing; `tty` picks the bar (true) or plain lines (false).
  Progress(bool enabled, bool tty, double plain_interval_s = 10.0);

  void start_epoch(int64_t epoch, int64_t epochs, int64_t batches, int64_t first_batch);
  /// `info` is appended to the line, e.g. "loss left 0.41 right 0.52".
  void update(int64_t batches_done, int64_t samples_done, const std::string& info);
  void end_epoch(const std::string& info);

  static bool stderr_is_tty();

 private:
  void draw(bool final_line, const std::string& info);
  using Clock = std::chrono::steady_clock;
  bool enabled_, tty_;
  double plain_interval_s_;
  int64_t epoch_ = 0, epochs_ = 0, batches_ = 0, first_ = 0, done_ = 0, samples_ = 0;
  Clock::time_point start_, last_draw_;
};

/// "1:02:03" / "2:03".
std::string format_duration(double seconds);

}  // namespace mtl
