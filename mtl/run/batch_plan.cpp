#include "mtl/run/batch_plan.h"

#include <algorithm>

#include "mtl/core/error.h"

namespace mtl {

BatchPlan::BatchPlan(const Dataset& train, const TrainerOptions& trainer, const TaskSamplerOptions& sampler,
                     const std::string& config_file)
    : trainer_(trainer), sampler_(sampler), size_(train.size()), parts_(train.dataset_parts()) {
  if (size_ == 0) throw Error(config_file, "the training split is empty");
  std::vector<int64_t> all = trainer.length_bucketing ? train.lengths() : std::vector<int64_t>{};
  if (parts_.empty()) {
    lengths_ = all;
    steps_per_epoch_ = batches_per_epoch(size_, trainer.batch_size, trainer.drop_last);
  } else {
    for (const auto& p : parts_) {
      if (p.size == 0) throw Error(config_file, "the training split of dataset '" + p.name + "' is empty");
      std::vector<int64_t> own;
      if (!all.empty()) own.assign(all.begin() + p.offset, all.begin() + p.offset + p.size);
      // A dataset without text reports zero lengths: no bucketing for it.
      if (std::all_of(own.begin(), own.end(), [](int64_t l) { return l == 0; })) own.clear();
      part_lengths_.push_back(std::move(own));
      steps_per_epoch_ += batches_per_epoch(p.size, trainer.batch_size, false);
    }
    if (sampler.steps_per_epoch > 0) steps_per_epoch_ = sampler.steps_per_epoch;
  }
  if (steps_per_epoch_ == 0)
    throw Error(config_file, "trainer.batch_size is larger than the training split with drop_last");
}

std::vector<std::vector<int64_t>> BatchPlan::epoch(int64_t epoch) const {
  const uint64_t seed = static_cast<uint64_t>(trainer_.seed);
  if (parts_.empty()) {
    auto batches = make_batches(epoch_permutation(size_, trainer_.seed, epoch), trainer_.batch_size, trainer_.drop_last);
    return bucket_by_length(batches, lengths_, seed, epoch);
  }
  std::vector<int64_t> sizes;
  for (const auto& p : parts_) sizes.push_back(p.size);
  std::vector<std::vector<int64_t>> out;
  for (auto& mb : mixture_epoch(sampler_, sizes, steps_per_epoch_, trainer_.batch_size, seed, epoch, part_lengths_)) {
    for (auto& i : mb.indices) i += parts_[static_cast<size_t>(mb.dataset)].offset;
    out.push_back(std::move(mb.indices));
  }
  return out;
}

}  // namespace mtl
