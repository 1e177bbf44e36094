// Ctrl-C (SIGINT) and SIGTERM (what schedulers send before they kill a job) as a request to stop instead of
// termination. While a StopSignalScope lives, the first such signal sets its flag (read with stop_requested());
// the owner finishes what it is doing (the trainer: the current step, then a checkpoint) and returns. A second
// signal while the first is pending ends the process at once with 128 + signal (files are written atomically,
// so the last checkpoint stays whole). Scopes nest (the innermost one gets the signal: a training run inside a
// sweep stops the run, the sweep sees it from the run's result); when a scope ends the previous handlers and
// scope come back.
//
//   mtl::StopSignalScope stop;
//   while (work_left() && !mtl::stop_requested()) do_some();
//   if (mtl::stop_requested()) return mtl::stopped_exit_code();  // 130 after Ctrl-C, 143 after SIGTERM
#pragma once

#include <atomic>

namespace mtl {

class StopSignalScope {
 public:
  StopSignalScope();
  ~StopSignalScope();
  StopSignalScope(const StopSignalScope&) = delete;
  StopSignalScope& operator=(const StopSignalScope&) = delete;

 private:
  std::atomic<bool> flag_{false};
  std::atomic<bool>* prev_flag_ = nullptr;
  void (*prev_int_)(int) = nullptr;
  void (*prev_term_)(int) = nullptr;
};

/// Whether SIGINT or SIGTERM came since the innermost live StopSignalScope began (false without one).
bool stop_requested();

/// The last stop signal this process received in any scope (SIGINT or SIGTERM), 0 when none came.
int last_stop_signal();

/// The exit status of a command that stopped on request: 128 + last_stop_signal() (130 when none came).
int stopped_exit_code();

}  // namespace mtl
