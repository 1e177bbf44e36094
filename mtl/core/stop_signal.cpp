#include "mtl/core/stop_signal.h"

#include <unistd.h>

#include <csignal>

namespace mtl {

namespace {

std::atomic<std::atomic<bool>*> g_current{nullptr};  // the innermost scope's flag (lock-free: signal-safe)
std::atomic<int> g_last_signal{0};

extern "C" void on_stop_signal(int sig) {
  std::atomic<bool>* flag = g_current.load();
  if (flag == nullptr) return;
  if (flag->exchange(true)) {  // the second request: stop now (write(2) and _exit are async-signal-safe)
    static const char msg[] = "\nmtl: second stop signal, exiting now (the last checkpoint is kept)\n";
    (void)!::write(STDERR_FILENO, msg, sizeof msg - 1);
    ::_exit(128 + sig);
  }
  g_last_signal.store(sig);
}

}  // namespace

StopSignalScope::StopSignalScope() {
  prev_flag_ = g_current.exchange(&flag_);
  prev_int_ = std::signal(SIGINT, on_stop_signal);
  prev_term_ = std::signal(SIGTERM, on_stop_signal);
}

StopSignalScope::~StopSignalScope() {
  std::signal(SIGINT, prev_int_);
  std::signal(SIGTERM, prev_term_);
  g_current.store(prev_flag_);
}

bool stop_requested() {
  std::atomic<bool>* flag = g_current.load();
  return flag != nullptr && flag->load();
}

int last_stop_signal() { return g_last_signal.load(); }

int stopped_exit_code() {
  const int sig = last_stop_signal();
  return 128 + (sig != 0 ? sig : SIGINT);
}

}  // namespace mtl
