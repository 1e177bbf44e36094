// Loader: order independent of the worker count, exceptions surface, early destruction never hangs.
#include "mtl/data/loader.h"

#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "mtl/data/sampler.h"
#include "test_util.h"

namespace {
// Example i is the scalar i; batch() sleeps a little at random so workers finish out of order.
class CountingDataset : public mtl::Dataset {
 public:
  explicit CountingDataset(int64_t n, int64_t fail_at = -1) : n_(n), fail_at_(fail_at) {}
  int64_t size() const override { return n_; }
  mtl::Batch batch(const std::vector<int64_t>& idx) const override {
    std::this_thread::sleep_for(std::chrono::microseconds((idx[0] * 7919) % 3000));
    for (int64_t i : idx)
      if (i == fail_at_) throw std::runtime_error("bad example " + std::to_string(i));
    mtl::Batch b;
    b.size = static_cast<int64_t>(idx.size());
    b.inputs["x"] = torch::tensor(idx);
    return b;
  }

 private:
  int64_t n_, fail_at_;
};

std::vector<int64_t> drain(int64_t workers, int64_t prefetch) {
  auto data = std::make_shared<CountingDataset>(500);
  auto batches = mtl::make_batches(mtl::epoch_permutation(500, 1, 0), 16, false);
  mtl::Loader loader(data, batches, {workers, prefetch});
  std::vector<int64_t> seen;
  mtl::Batch b;
  while (loader.next(b)) {
    auto x = b.inputs.at("x");
    for (int64_t k = 0; k < b.size; ++k) seen.push_back(x[k].item<int64_t>());
  }
  return seen;
}
}  // namespace

TEST(Loader, OrderDependsOnlyOnTheBatchesNotOnWorkers) {
  auto reference = mtl::epoch_permutation(500, 1, 0);
  EXPECT_EQ(drain(0, 1), reference);
  EXPECT_EQ(drain(1, 2), reference);
  EXPECT_EQ(drain(3, 4), reference);
  EXPECT_EQ(drain(4, 1), reference);
}

TEST(Loader, WorkerExceptionSurfacesWithItsMessage) {
  auto data = std::make_shared<CountingDataset>(100, 37);
  auto batches = mtl::make_batches(mtl::epoch_permutation(100, 0, 0), 10, false);
  mtl::Loader loader(data, batches, {3, 2});
  mtl::Batch b;
  try {
    while (loader.next(b)) {
    }
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "bad example 37");
  }
}

TEST(Loader, StoppingEarlyJoinsCleanly) {
  auto data = std::make_shared<CountingDataset>(1000);
  auto batches = mtl::make_batches(mtl::epoch_permutation(1000, 0, 0), 8, false);
  auto start = std::chrono::steady_clock::now();
  {
    mtl::Loader loader(data, batches, {4, 8});
    mtl::Batch b;
    ASSERT_TRUE(loader.next(b));
  }  // destroyed with work pending
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 5.0);
}
