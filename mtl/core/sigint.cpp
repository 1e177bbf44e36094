#include "mtl/core/sigint.h"

#include <csignal>

namespace mtl {

namespace {

std::atomic<std::atomic<bool>*> g_current{nullptr};  // the innermost scope's flag (lock-free: signal-safe)

extern "C" void on_sigint(int) {
  if (std::atomic<bool>* flag = g_current.load()) flag->store(true);
}

}  // namespace

SigintScope::SigintScope() {
  prev_flag_ = g_current.exchange(&flag_);
  prev_handler_ = std::signal(SIGINT, on_sigint);
}

SigintScope::~SigintScope() {
  std::signal(SIGINT, prev_handler_);
  g_current.store(prev_flag_);
}

bool sigint_requested() {
  std::atomic<bool>* flag = g_current.load();
  return flag != nullptr && flag->load();
}

}  // namespace mtl
