// Sampling: the order of examples in an epoch depends only on (seed, epoch), never on threads or timing,
// so a run resumed at any step sees exactly the batches the uninterrupted run would have seen.
#pragma once

#include <cstdint>
#include <string>
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

/// Length bucketing: regroups the examples of each run of `window` consecutive batches so that each batch
/// holds examples of similar length (sorted by `lengths`, ties by position), keeping every batch's size, then
/// shuffles those batches' order (from seed, epoch). Padding waste drops while batches stay random.
std::vector<std::vector<int64_t>> bucket_by_length(const std::vector<std::vector<int64_t>>& batches,
                                                   const std::vector<int64_t>& lengths, uint64_t seed,
                                                   int64_t epoch, int64_t window = 50);

// Task sampling: with tasks from several datasets, each step draws one dataset (all the tasks labelled by it
// are present in that step). The sampler decides which, from the datasets' sizes n_d:
//   proportional  p_d = n_d / sum n           (each example seen about once per epoch)
//   uniform       p_d = 1 / D
//   temperature   p_d ~ n_d^(1/T)              (T = 1: proportional; T -> inf: uniform)
//   round_robin   datasets in turn, 0, 1, ..., D-1, 0, ...
//   given         p_d from the config
// An epoch has `steps` steps (default: the sum over datasets of their batches per epoch). Every dataset
// walks through its own shuffled passes (a new pass, newly shuffled, when one runs out), so a small dataset
// sampled often repeats and a large one sampled rarely is seen in part.
struct TaskSamplerOptions {
  std::string type = "proportional";
  double temperature = 2.0;
  std::vector<double> probabilities;  // `given`: one per dataset, summing to 1
  int64_t steps_per_epoch = 0;        // 0 = sum of the datasets' batches per epoch
};

/// Probability of each dataset per step (round_robin: 1/D each, its long-run frequency).
std::vector<double> task_sampling_probabilities(const TaskSamplerOptions& options, const std::vector<int64_t>& sizes);

/// The dataset of each of an epoch's `steps` steps; a function of (seed, epoch) only.
std::vector<int64_t> sample_datasets(const TaskSamplerOptions& options, const std::vector<int64_t>& sizes,
                                     int64_t steps, uint64_t seed, int64_t epoch);

/// One step's batch: the dataset drawn and its examples' indices within that dataset.
struct MixtureBatch {
  int64_t dataset = 0;
  std::vector<int64_t> indices;
};

/// An epoch of a mixture: `steps` batches of `batch_size` examples (a dataset smaller than batch_size gives
/// all its examples), each from the dataset sample_datasets drew. `lengths` (per dataset, may be empty)
/// turns on length bucketing within each dataset's stream.
std::vector<MixtureBatch> mixture_epoch(const TaskSamplerOptions& options, const std::vector<int64_t>& sizes,
                                        int64_t steps, int64_t batch_size, uint64_t seed, int64_t epoch,
                                        const std::vector<std::vector<int64_t>>& lengths = {});

}  // namespace mtl
