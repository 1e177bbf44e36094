// Asynchronous training (engine.mode: async), Hogwild!-style: each batch is split into one shard per worker
// as in sync mode; each worker thread takes the next shard, computes that shard's share of the gradient and
// applies its own SGD(+momentum) update to the shared weights at once, without locks. No worker waits for another, so a slow or busy core never stalls the rest; the price
// is stale gradients and lost updates, and results that depend on timing (not bitwise reproducible).
// Each worker computes its gradient on a private snapshot of the weights taken at the start of its step
// (a consistent read: the other workers' in-place updates cannot tear a forward/backward pass), then
// adds its update to the shared weights.
// Helps when synchronisation dominates (small models, many cores, uneven cores); sync mode is the
// default and the reference. Supports SGD and loss-based weighting; models with BatchNorm buffers
// are refused (their running statistics would race).
#pragma once

#include <functional>

#include "mtl/data/loader.h"
#include "mtl/engine/engine.h"
#include "mtl/optim/optimizer.h"

namespace mtl {

struct AsyncOptions {
  int threads = 1;
  int intra_op_threads = 1;
  uint64_t seed = 0;
  /// Evaluate each shard's gradient at the weights advanced by the other workers' expected momentum
  /// steps (a DANA-style delay correction; engine.lookahead).
  bool lookahead = true;
};

/// Called after every update, serialised; return false to stop all workers.
using AsyncStepCallback = std::function<bool(const Batch& batch, const StepResult& result, double lr)>;

/// Trains on every batch the loader yields. `lr_for(step)` gives the rate of global step `step`
/// (numbered from `first_step` in the order batches are taken).
void run_async(MultiTaskModel model, const std::vector<TaskSpec>& tasks, Weighting& weighting,
               const OptimizerOptions& sgd, const AsyncOptions& options, Loader& loader, int64_t first_step,
               int64_t epoch, const std::function<double(int64_t)>& lr_for, const AsyncStepCallback& on_step,
               const std::function<MultiTaskModel()>& make_replica);

}  // namespace mtl
