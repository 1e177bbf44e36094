// ParallelEngine: synchronous data-parallel steps on N long-lived worker threads in one process.
//
// Each step splits the batch into N contiguous shards (sizes differ by at most one). Every worker runs
// forward and backward on its shard against the one shared model, with torch::autograd::grad writing
// into thread-local gradient buffers (per-thread gradient replicas; parameters are not copied). The
// buffers are then summed in worker order (deterministic), each shard's loss having been scaled by
// shard_size / batch_size, so the result is the full-batch gradient: N-thread training is the same
// optimisation as single-thread training on the whole batch.
//
// What is reduced depends on the weighting strategy (Weighting::needs()):
//   kWeightedLoss     phase 1 forward + per-task shard losses; the full-batch task losses are reduced and
//                     handed to loss_weights(); phase 2 backpropagates sum_t w_t L_t per shard.
//   kSharedTaskGrads  phase 2 computes one gradient row per task for the shared (trunk) parameters;
//                     rows are reduced into a T x P matrix and combine() makes the trunk gradient. Head
//                     gradients are those of sum_t w_t L_t, taken in the same T backward passes.
//   kRepresentationGrads phase 2 takes, per task, the gradient w.r.t. the shard's shared representation Z
//                     (and the head's own gradient) in one pass through the head; the shards' T x T Gram
//                     matrices add up to the full batch's, which representation_weights() turns into
//                     weights a; phase 3 backpropagates sum_t a_t dL_t/dZ through the trunk once.
// Modules with buffers written in forward (BatchNorm running statistics) get one replica per worker
// whose parameters alias the shared ones; after each step the replicas' buffers are averaged into the
// model and copied back (running statistics = mean over shards). Training-mode BatchNorm therefore
// normalises with per-shard statistics, as PyTorch's DataParallel does without SyncBatchNorm.
#pragma once

#include <functional>
#include <memory>

#include "mtl/engine/engine.h"

namespace mtl {

struct ParallelEngineOptions {
  int threads = 1;             // worker threads
  int intra_op_threads = 1;    // OpenMP/BLAS threads per worker (threads x intra_op <= cores)
  uint64_t seed = 0;
  bool dynamic_balance = false;  // shard sizes follow each worker's measured examples/s
};

/// `make_replica` builds a fresh model of the same architecture (needed only when the model has
/// buffers, e.g. BatchNorm); it may be empty otherwise.
std::unique_ptr<GradientEngine> make_parallel_engine(MultiTaskModel model, const std::vector<TaskSpec>& tasks,
                                                     Weighting& weighting, ParallelEngineOptions options,
                                                     std::function<MultiTaskModel()> make_replica = {});

/// Shard boundaries: shard i is rows [offsets[i], offsets[i+1]).
std::vector<int64_t> shard_offsets(int64_t batch_size, int shards);
/// Shard boundaries with sizes proportional to `speeds` (largest remainders; every shard >= 1 row
/// when batch_size >= shards).
std::vector<int64_t> balanced_shard_offsets(int64_t batch_size, const std::vector<double>& speeds);

}  // namespace mtl
