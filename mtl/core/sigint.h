// Ctrl-C as a request instead of termination. While a SigintScope lives, SIGINT sets its flag (read with
// sigint_requested()) instead of killing the process; scopes nest (the innermost one gets the signal: a training
// run inside a sweep stops the run, the sweep sees it from the run's result), and when a scope ends the previous
// handler and scope come back. The trainer checks the flag after each step; the sweep between runs.
//
//   mtl::SigintScope sigint;
//   while (work_left() && !mtl::sigint_requested()) do_some();
#pragma once

#include <atomic>

namespace mtl {

class SigintScope {
 public:
  SigintScope();
  ~SigintScope();
  SigintScope(const SigintScope&) = delete;
  SigintScope& operator=(const SigintScope&) = delete;

 private:
  std::atomic<bool> flag_{false};
  std::atomic<bool>* prev_flag_ = nullptr;
  void (*prev_handler_)(int) = nullptr;
};

/// Whether Ctrl-C came since the innermost live SigintScope began (false without one).
bool sigint_requested();

}  // namespace mtl
