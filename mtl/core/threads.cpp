#include "mtl/core/threads.h"

#include <omp.h>

namespace mtl {

void set_intra_op_threads_for_this_thread(int n) {
  // LibTorch initialises a thread's OpenMP thread count lazily, from the global setting, the first time the
  // thread asks for it (get_num_threads, or a large enough op); trigger that now so that the per-thread
  // count below is not overwritten later. (A tiny op does not reach that code path.)
  (void)at::get_num_threads();
  omp_set_num_threads(n < 1 ? 1 : n);
}

// at::get_num_threads() also runs LibTorch's lazy per-thread setup (see above) before the count is read.
IntraOpThreadsScope::IntraOpThreadsScope(int n) : saved_(at::get_num_threads()) { omp_set_num_threads(n < 1 ? 1 : n); }

IntraOpThreadsScope::~IntraOpThreadsScope() { omp_set_num_threads(saved_); }

WorkerPool::WorkerPool(int workers, std::function<void(int)> init) : errors_(workers) {
  for (int i = 0; i < workers; ++i) threads_.emplace_back([this, i, init] { loop(i, init); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  start_cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void WorkerPool::loop(int index, std::function<void(int)> init) {
  if (init) init(index);
  uint64_t seen = 0;
  while (true) {
    const std::function<void(int)>* task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      start_cv_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
      task = task_;
    }
    std::exception_ptr err;
    try {
      (*task)(index);
    } catch (...) {
      err = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      errors_[index] = err;
      if (--pending_ == 0) done_cv_.notify_all();
    }
  }
}

void WorkerPool::run(const std::function<void(int)>& fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    task_ = &fn;
    pending_ = size();
    ++generation_;
  }
  start_cv_.notify_all();
  std::unique_lock<std::mutex> lock(mu_);
  done_cv_.wait(lock, [&] { return pending_ == 0; });
  task_ = nullptr;
  for (auto& e : errors_)
    if (e) {
      auto first = e;
      for (auto& x : errors_) x = nullptr;
      std::rethrow_exception(first);
    }
}

}  // namespace mtl
