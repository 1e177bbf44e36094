#include "mtl/data/loader.h"

#include <chrono>

#include "mtl/core/threads.h"

namespace mtl {

Loader::Loader(std::shared_ptr<const Dataset> data, std::vector<std::vector<int64_t>> batches, LoaderOptions options)
    : data_(std::move(data)), batches_(std::move(batches)), options_(options) {
  if (options_.prefetch < 1) options_.prefetch = 1;
  for (int64_t i = 0; i < options_.workers; ++i) threads_.emplace_back([this] { worker_loop(); });
}

Loader::~Loader() { stop(); }

void Loader::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

void Loader::worker_loop() {
  // Collation is small tensor work: keep it off the intra-op pool the engine uses.
  set_intra_op_threads_for_this_thread(1);
  const int64_t total = static_cast<int64_t>(batches_.size());
  while (true) {
    int64_t index;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] {
        return stopping_ || error_ || next_issue_ >= total || next_issue_ < next_deliver_ + options_.prefetch;
      });
      if (stopping_ || error_ || next_issue_ >= total) return;
      index = next_issue_++;
    }
    try {
      Batch b = data_->batch(batches_[index]);
      std::lock_guard<std::mutex> lock(mu_);
      ready_.emplace(index, std::move(b));
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!error_) error_ = std::current_exception();
    }
    cv_.notify_all();
  }
}

bool Loader::next(Batch& out) {
  if (next_deliver_ >= static_cast<int64_t>(batches_.size())) return false;
  if (options_.workers == 0) {
    out = data_->batch(batches_[next_deliver_++]);
    return true;
  }
  auto start = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return error_ || ready_.count(next_deliver_); });
  wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (error_) std::rethrow_exception(error_);
  auto it = ready_.find(next_deliver_);
  out = std::move(it->second);
  ready_.erase(it);
  ++next_deliver_;
  lock.unlock();
  cv_.notify_all();
  return true;
}

}  // namespace mtl
