// Shard planning: how a batch is split between the engine's workers. Shards are contiguous row ranges whose
// sizes differ by at most one (static), or follow each worker's measured speed (dynamic balance).
//   mtl::ShardPlanner plan(2, /*dynamic=*/false);
//   std::vector<int64_t> off = plan.offsets(batch.size);   // shard i = rows [off[i], off[i + 1])
#pragma once

#include <cstdint>
#include <vector>

namespace mtl {

/// Shard boundaries: shard i is rows [offsets[i], offsets[i+1]).
std::vector<int64_t> shard_offsets(int64_t batch_size, int shards);
/// Shard boundaries with sizes proportional to `speeds` (largest remainders; every shard >= 1 row
/// when batch_size >= shards).
std::vector<int64_t> balanced_shard_offsets(int64_t batch_size, const std::vector<double>& speeds);

class ShardPlanner {
 public:
  ShardPlanner(int workers, bool dynamic) : dynamic_(dynamic), speeds_(workers, 0.0) {}
  /// This step's shard boundaries.
  std::vector<int64_t> offsets(int64_t batch_size) const;
  /// Records how long each worker took for the shards of `offsets` (smoothed examples/s).
  void record(const std::vector<int64_t>& offsets, const std::vector<double>& seconds);

 private:
  bool dynamic_;
  std::vector<double> speeds_;
};

}  // namespace mtl
