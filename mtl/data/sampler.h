// Sampling: the order of examples in an epoch depends only on (seed, epoch), never on threads or timing,
// so a run resumed at any step sees exactly the batches the uninterrupted run would have seen.
#pragma once

#include <cstdint>
#include <vector>

namespace mtl {

/// A permutation of [0, n) for `epoch` (Fisher-Yates with a 64-bit Mersenne Twister seeded from seed
/// and epoch; the same on every platform).
std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch);

/// Splits `order` into batches of `batch_size` (the last one smaller unless `drop_last`).
std::vector<std::vector<int64_t>> make_batches(const std::vector<int64_t>& order, int64_t batch_size,
                                               bool drop_last);

/// Number of batches per epoch for n examples.
int64_t batches_per_epoch(int64_t n, int64_t batch_size, bool drop_last);

}  // namespace mtl
