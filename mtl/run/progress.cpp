#include "mtl/run/progress.h"

#include <unistd.h>

#include <cstdio>

namespace mtl {

std::string format_duration(double seconds) {
  if (seconds < 0 || seconds > 1e7) return "?";
  int64_t s = static_cast<int64_t>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", (long long)(s / 3600), (long long)(s / 60 % 60),
                  (long long)(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", (long long)(s / 60), (long long)(s % 60));
  return buf;
}

bool Progress::stderr_is_tty() { return ::isatty(STDERR_FILENO) == 1; }

Progress::Progress(bool enabled, bool tty, double plain_interval_s)
    : enabled_(enabled), tty_(tty), plain_interval_s_(plain_interval_s) {}

void Progress::start_epoch(int64_t epoch, int64_t epochs, int64_t batches, int64_t first_batch) {
  epoch_ = epoch;
  epochs_ = epochs;
  batches_ = batches;
  first_ = done_ = first_batch;
  samples_ = 0;
  start_ = last_draw_ = Clock::now();
}

void Progress::update(int64_t batches_done, int64_t samples_done, const std::string& info) {
  done_ = batches_done;
  samples_ = samples_done;
  if (!enabled_) return;
  double since = std::chrono::duration<double>(Clock::now() - last_draw_).count();
  if (since < (tty_ ? 0.1 : plain_interval_s_)) return;
  draw(false, info);
}

void Progress::end_epoch(const std::string& info) {
  if (!enabled_) return;
  draw(true, info);
}

void Progress::draw(bool final_line, const std::string& info) {
  last_draw_ = Clock::now();
  double elapsed = std::chrono::duration<double>(last_draw_ - start_).count();
  double rate = elapsed > 0 ? samples_ / elapsed : 0.0;
  int64_t run = done_ - first_;
  double eta = run > 0 ? elapsed / run * (batches_ - done_) : -1;
  double frac = batches_ > 0 ? double(done_) / batches_ : 1.0;
  char head[64];
  std::snprintf(head, sizeof head, "epoch %lld/%lld", (long long)(epoch_ + 1), (long long)epochs_);
  std::string line;
  if (tty_) {
    const int width = 24;
    int fill = static_cast<int>(frac * width);
    std::string bar = std::string(fill, '=') + (fill < width ? ">" : "") + std::string(std::max(0, width - fill - 1), ' ');
    char buf[256];
    std::snprintf(buf, sizeof buf, "\r%s [%s] %3d%% %lld/%lld %.0f ex/s %s %s", head, bar.c_str(),
                  int(frac * 100), (long long)done_, (long long)batches_, rate,
                  final_line ? format_duration(elapsed).c_str() : ("ETA " + format_duration(eta)).c_str(),
                  info.c_str());
    line = buf;
    line += "\x1b[K";  // clear the rest of the line
    if (final_line) line += "\n";
  } else {
    char buf[256];
    std::snprintf(buf, sizeof buf, "%s %3d%% %lld/%lld %.0f ex/s %s %s\n", head, int(frac * 100),
                  (long long)done_, (long long)batches_, rate,
                  final_line ? ("time " + format_duration(elapsed)).c_str() : ("ETA " + format_duration(eta)).c_str(),
                  info.c_str());
    line = buf;
  }
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
}

}  // namespace mtl
