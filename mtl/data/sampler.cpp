#include "mtl/data/sampler.h"

#include <algorithm>
#include <cmath>
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

namespace {
std::mt19937_64 stream(uint64_t seed, int64_t epoch, uint32_t salt) {
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32), static_cast<uint32_t>(epoch),
                    static_cast<uint32_t>(static_cast<uint64_t>(epoch) >> 32), salt};
  return std::mt19937_64(seq);
}

// Uniform double in [0, 1) with 53 random bits (the same on every platform, unlike std::uniform_real).
double unit(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }
}  // namespace

std::vector<std::vector<int64_t>> bucket_by_length(const std::vector<std::vector<int64_t>>& batches,
                                                   const std::vector<int64_t>& lengths, uint64_t seed,
                                                   int64_t epoch, int64_t window) {
  if (lengths.empty() || window <= 1) return batches;
  std::mt19937_64 rng = stream(seed, epoch, 0x6275636bu);  // "buck"
  std::vector<std::vector<int64_t>> out;
  out.reserve(batches.size());
  for (size_t g = 0; g < batches.size(); g += static_cast<size_t>(window)) {
    size_t end = std::min(batches.size(), g + static_cast<size_t>(window));
    std::vector<int64_t> pool;
    for (size_t b = g; b < end; ++b) pool.insert(pool.end(), batches[b].begin(), batches[b].end());
    std::stable_sort(pool.begin(), pool.end(), [&](int64_t a, int64_t b) { return lengths[a] < lengths[b]; });
    std::vector<std::vector<int64_t>> group;
    size_t pos = 0;
    for (size_t b = g; b < end; ++b) {
      group.emplace_back(pool.begin() + pos, pool.begin() + pos + batches[b].size());
      pos += batches[b].size();
    }
    for (size_t i = group.size(); i > 1; --i) std::swap(group[i - 1], group[uniform_below(rng, i)]);
    for (auto& b : group) out.push_back(std::move(b));
  }
  return out;
}

std::vector<double> task_sampling_probabilities(const TaskSamplerOptions& o, const std::vector<int64_t>& sizes) {
  const size_t D = sizes.size();
  std::vector<double> p(D, 0.0);
  if (D == 0) return p;
  if (o.type == "given") {
    p = o.probabilities;
  } else if (o.type == "uniform" || o.type == "round_robin") {
    std::fill(p.begin(), p.end(), 1.0);
  } else {  // proportional, temperature
    const double exponent = o.type == "temperature" ? 1.0 / o.temperature : 1.0;
    for (size_t d = 0; d < D; ++d) p[d] = std::pow(static_cast<double>(sizes[d]), exponent);
  }
  double sum = std::accumulate(p.begin(), p.end(), 0.0);
  for (double& x : p) x = sum > 0 ? x / sum : 1.0 / static_cast<double>(D);
  return p;
}

std::vector<int64_t> sample_datasets(const TaskSamplerOptions& o, const std::vector<int64_t>& sizes, int64_t steps,
                                     uint64_t seed, int64_t epoch) {
  const int64_t D = static_cast<int64_t>(sizes.size());
  std::vector<int64_t> out(static_cast<size_t>(std::max<int64_t>(steps, 0)));
  if (o.type == "round_robin") {
    for (int64_t s = 0; s < steps; ++s) out[s] = s % D;
    return out;
  }
  std::vector<double> cdf = task_sampling_probabilities(o, sizes);
  std::partial_sum(cdf.begin(), cdf.end(), cdf.begin());
  std::mt19937_64 rng = stream(seed, epoch, 0x7461736bu);  // "task"
  for (int64_t s = 0; s < steps; ++s) {
    double u = unit(rng) * cdf.back();
    int64_t d = std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin();
    out[s] = std::min(d, D - 1);
  }
  return out;
}

std::vector<MixtureBatch> mixture_epoch(const TaskSamplerOptions& o, const std::vector<int64_t>& sizes,
                                        int64_t steps, int64_t batch_size, uint64_t seed, int64_t epoch,
                                        const std::vector<std::vector<int64_t>>& lengths) {
  const size_t D = sizes.size();
  std::vector<int64_t> drawn = sample_datasets(o, sizes, steps, seed, epoch);
  std::vector<int64_t> needed(D, 0);
  for (int64_t d : drawn) ++needed[d];
  // Each dataset's batches for this epoch, cut from its stream of shuffled passes.
  std::vector<std::vector<std::vector<int64_t>>> per(D);
  for (size_t d = 0; d < D; ++d) {
    if (needed[d] == 0 || sizes[d] == 0) continue;
    const int64_t b = std::min(batch_size, sizes[d]);
    const uint64_t dseed = seed + 0x9e3779b97f4a7c15ull * (d + 1);
    std::vector<int64_t> stream_idx;
    for (int64_t pass = 0; static_cast<int64_t>(stream_idx.size()) < needed[d] * b; ++pass) {
      std::vector<int64_t> perm = epoch_permutation(sizes[d], dseed, epoch * 1000003 + pass);
      stream_idx.insert(stream_idx.end(), perm.begin(), perm.end());
    }
    stream_idx.resize(static_cast<size_t>(needed[d] * b));
    per[d] = make_batches(stream_idx, b, false);
    if (d < lengths.size()) per[d] = bucket_by_length(per[d], lengths[d], dseed, epoch);
  }
  std::vector<MixtureBatch> out;
  out.reserve(drawn.size());
  std::vector<size_t> next(D, 0);
  for (int64_t d : drawn) out.push_back(MixtureBatch{d, std::move(per[d][next[d]++])});
  return out;
}

}  // namespace mtl
