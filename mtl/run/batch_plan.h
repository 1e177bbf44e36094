// The batches of each epoch, for one dataset or for tasks from several datasets (a task sampler picks each
// step's dataset). Every epoch's batches are a function of (seed, epoch) only, never of threads or timing,
// so a run resumed at any step sees exactly the batches the uninterrupted run would have seen.
//   mtl::BatchPlan plan(*train_data, trainer, task_sampler);
//   for (const auto& indices : plan.epoch(e)) loader-order ...;   plan.steps_per_epoch();
#pragma once

#include <cstdint>
#include <vector>

#include "mtl/data/dataset.h"
#include "mtl/data/sampler.h"
#include "mtl/run/run_config.h"

namespace mtl {

class BatchPlan {
 public:
  /// Throws mtl::Error naming `config_file` when a dataset's training split is empty or no batch fits.
  BatchPlan(const Dataset& train, const TrainerOptions& trainer, const TaskSamplerOptions& sampler,
            const std::string& config_file);
  int64_t steps_per_epoch() const { return steps_per_epoch_; }
  /// Indices into the training split, one vector per step.
  std::vector<std::vector<int64_t>> epoch(int64_t epoch) const;

 private:
  TrainerOptions trainer_;
  TaskSamplerOptions sampler_;
  int64_t size_ = 0;
  std::vector<DatasetPart> parts_;                 // empty: one dataset
  std::vector<int64_t> lengths_;                   // one dataset: per example (length bucketing)
  std::vector<std::vector<int64_t>> part_lengths_; // several: per dataset
  int64_t steps_per_epoch_ = 0;
};

}  // namespace mtl
