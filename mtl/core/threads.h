// Thread helpers for the engine and the loader: per-thread intra-op thread counts (so that worker threads
// x intra-op threads never exceeds the cores) and a pool of long-lived workers that run one function on
// every worker and return when all are done, rethrowing the first failure (by worker index).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace mtl {

/// Sets how many OpenMP/BLAS threads ops started from the *calling* thread may use.
void set_intra_op_threads_for_this_thread(int n);

/// Ops started from the calling thread use at most `n` OpenMP/BLAS threads until the scope ends; the previous
/// count is restored then. For small serial work between pool runs: OpenMP threads it wakes keep spinning
/// for a while afterwards and take cores from the workers of the next run.
class IntraOpThreadsScope {
 public:
  explicit IntraOpThreadsScope(int n);
  ~IntraOpThreadsScope();
  IntraOpThreadsScope(const IntraOpThreadsScope&) = delete;
  IntraOpThreadsScope& operator=(const IntraOpThreadsScope&) = delete;

 private:
  int saved_;
};

class WorkerPool {
 public:
  /// `init(i)` runs once on worker i when it starts (e.g. thread settings).
  WorkerPool(int workers, std::function<void(int)> init = {});
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  int size() const { return static_cast<int>(threads_.size()); }
  /// Runs fn(i) on every worker i and waits. If any throws, rethrows the exception of the lowest-numbered
  /// failing worker after all have finished (no worker is left running, nothing hangs).
  void run(const std::function<void(int)>& fn);

 private:
  void loop(int index, std::function<void(int)> init);

  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable start_cv_, done_cv_;
  const std::function<void(int)>* task_ = nullptr;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stopping_ = false;
  std::vector<std::exception_ptr> errors_;
};

}  // namespace mtl
