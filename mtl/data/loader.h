// Loader: K worker threads collate batches (dataset->batch) ahead of the training loop into a bounded
// queue of `prefetch` batches. Batches come out in the order given, whatever K or timing; an exception
// in a worker is rethrown by next() with its message; destruction stops and joins the workers.
//   Loader loader(train_data, make_batches(order, 256, false), {/*workers=*/2, /*prefetch=*/4});
//   Batch b; while (loader.next(b)) { ... }
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "mtl/data/dataset.h"

namespace mtl {

struct LoaderOptions {
  int64_t workers = 1;   // threads that collate batches (0 = collate on the calling thread)
  int64_t prefetch = 4;  // batches prepared ahead (queue depth)
};

class Loader {
 public:
  Loader(std::shared_ptr<const Dataset> data, std::vector<std::vector<int64_t>> batches, LoaderOptions options);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  /// The next batch in order; false at the end. Rethrows a worker's exception.
  bool next(Batch& out);
  /// Seconds next() spent waiting for a batch that was not ready yet.
  double wait_seconds() const { return wait_seconds_; }

 private:
  void worker_loop();
  void stop();

  std::shared_ptr<const Dataset> data_;
  std::vector<std::vector<int64_t>> batches_;
  LoaderOptions options_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int64_t, Batch> ready_;
  int64_t next_issue_ = 0;    // next batch index a worker may take
  int64_t next_deliver_ = 0;  // next batch index next() returns
  bool stopping_ = false;
  std::exception_ptr error_;
  double wait_seconds_ = 0.0;
};

}  // namespace mtl
