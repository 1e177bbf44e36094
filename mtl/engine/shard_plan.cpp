#include "mtl/engine/shard_plan.h"

#include <algorithm>
#include <utility>

namespace mtl {

std::vector<int64_t> shard_offsets(int64_t batch_size, int shards) {
  std::vector<int64_t> off(shards + 1, 0);
  for (int i = 0; i < shards; ++i) off[i + 1] = off[i] + batch_size / shards + (i < batch_size % shards ? 1 : 0);
  return off;
}

std::vector<int64_t> balanced_shard_offsets(int64_t batch_size, const std::vector<double>& speeds) {
  const int n = static_cast<int>(speeds.size());
  double total = 0;
  for (double s : speeds) total += std::max(s, 1e-12);
  int64_t floor_each = batch_size >= n ? 1 : 0;  // keep every worker measured
  int64_t rest = batch_size - floor_each * n;
  std::vector<int64_t> size(n, floor_each);
  std::vector<std::pair<double, int>> frac;
  int64_t used = 0;
  for (int i = 0; i < n; ++i) {
    double exact = rest * std::max(speeds[i], 1e-12) / total;
    int64_t whole = static_cast<int64_t>(exact);
    size[i] += whole;
    used += whole;
    frac.emplace_back(exact - whole, -i);
  }
  std::sort(frac.rbegin(), frac.rend());  // largest remainder first, lower index on ties
  for (int64_t k = 0; k < rest - used; ++k) size[-frac[k].second] += 1;
  std::vector<int64_t> off(n + 1, 0);
  for (int i = 0; i < n; ++i) off[i + 1] = off[i] + size[i];
  return off;
}

std::vector<int64_t> ShardPlanner::offsets(int64_t batch_size) const {
  if (dynamic_ && speeds_[0] > 0) return balanced_shard_offsets(batch_size, speeds_);
  return shard_offsets(batch_size, static_cast<int>(speeds_.size()));
}

void ShardPlanner::record(const std::vector<int64_t>& off, const std::vector<double>& seconds) {
  for (size_t i = 0; i < speeds_.size(); ++i) {
    if (seconds[i] <= 0 || off[i + 1] == off[i]) continue;
    double s = double(off[i + 1] - off[i]) / seconds[i];
    speeds_[i] = speeds_[i] > 0 ? 0.7 * speeds_[i] + 0.3 * s : s;
  }
}

}  // namespace mtl
