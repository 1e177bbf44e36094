// Checkpoints: model weights, optimizer state, the weighting method's state (through the Stateful interface),
// the RNG state and the position in training, in one file written atomically. Loading checks that every tensor
// is present with the right shape and dtype and names any that are not.
#pragma once

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <string>
#include <vector>

#include "mtl/core/stateful.h"
#include "mtl/io/safetensors.h"  // NamedTensors

namespace mtl {

struct TrainPosition {
  int64_t step = 0;            // optimizer steps taken
  int64_t epoch = 0;           // current epoch (0-based)
  int64_t batch_in_epoch = 0;  // batches of `epoch` already consumed
  // Running sums of the current epoch (so epoch-level statistics survive a mid-epoch resume).
  std::vector<double> epoch_loss_sum;  // per task: sum over examples of the loss
  std::vector<double> epoch_examples;  // per task: examples seen
  // The thread plan `trainer.threads: auto` chose (0 = none recorded), so that a resumed run keeps it.
  int64_t workers = 0, intra_op_threads = 0;
  // Bytes of the run's metrics.jsonl when the checkpoint was written (-1: not recorded), so that a resumed
  // run drops the lines written after it (they are written again) and its log equals an uninterrupted one's.
  int64_t log_bytes = -1;
};

struct CheckpointRefs {
  torch::nn::Module* model = nullptr;
  torch::optim::Optimizer* optimizer = nullptr;  // optional
  Stateful* weighting = nullptr;                 // optional: the weighting method, saved as entry "weighting"
};

void save_checkpoint(const std::string& path, const CheckpointRefs& refs, const TrainPosition& position);

/// Restores what `refs` points at (and the global RNG when `restore_rng`); returns the saved position.
TrainPosition load_checkpoint(const std::string& path, const CheckpointRefs& refs, bool restore_rng = true);

/// The model tensors ("model" entry) of the mtl checkpoint file `path`, in saved order, e.g. to initialise
/// another model from them (mtl/io/weight_import.h). Same checks and errors as load_checkpoint.
NamedTensors read_checkpoint_model_tensors(const std::string& path);

/// A run directory or a checkpoint file -> the checkpoint file path.
std::string resolve_checkpoint_path(const std::string& path);

}  // namespace mtl
