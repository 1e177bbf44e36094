#include "mtl/data/sampler.h"

#include <numeric>
#include <random>

namespace mtl {

namespace {
// Unbiased integer in [0, bound) from a 64-bit generator (rejection sampling).
uint64_t uniform_below(std::mt19937_64& rng, uint64_t bound) {
  uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  uint64_t x;
  do x = rng();
  while (x >= limit);
  return x % bound;
}
}  // namespace

std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                    static_cast<uint32_t>(epoch), static_cast<uint32_t>(static_cast<uint64_t>(epoch) >> 32),
                    0x6d746cu};
  std::mt19937_64 rng(seq);
  for (int64_t i = n - 1; i > 0; --i) std::swap(order[i], order[uniform_below(rng, uint64_t(i) + 1)]);
  return order;
}

std::vector<std::vector<int64_t>> make_batches(const std::vector<int64_t>& order, int64_t batch_size,
                                               bool drop_last) {
  std::vector<std::vector<int64_t>> out;
  for (size_t i = 0; i < order.size(); i += batch_size) {
    size_t end = std::min(order.size(), i + size_t(batch_size));
    if (drop_last && end - i < size_t(batch_size)) break;
    out.emplace_back(order.begin() + i, order.begin() + end);
  }
  return out;
}

int64_t batches_per_epoch(int64_t n, int64_t batch_size, bool drop_last) {
  return drop_last ? n / batch_size : (n + batch_size - 1) / batch_size;
}

}  // namespace mtl
