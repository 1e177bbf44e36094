// ParallelEngine: synchronous data-parallel gradients on N long-lived worker threads in one process.
//
// Each step splits the batch into N contiguous shards (mtl/engine/shard_plan.h). Every worker runs forward
// and backward on its shard against the one shared model, with torch::autograd::grad writing into
// thread-local buffers (per-thread gradient replicas; parameters are not copied), each shard's loss scaled by
// shard_size / batch_size. A GradientReducer (mtl/engine/reducer.h) then sums the buffers in worker order, so
// the result is the full-batch gradient: N-thread training is the same optimisation as single-thread
// training on the whole batch.
//
// The passes per gradient kind (Weighting::needs()):
//   kWeightedLoss     forward + per-task shard losses; the reduced full-batch losses go to loss_weights();
//                     then each shard backpropagates sum_t w_t L_t (forward and backward in one pool run when
//                     the weights do not depend on this step's losses).
//   kSharedTaskGrads  in the same pool run as the forward pass, one backward pass per task gives its row of the
//                     T x P matrix of shared-parameter gradients (a matrix reused from step to step) and its
//                     head's gradient; the reduced matrix goes to combine(), the heads' reduced gradients are
//                     scaled by their loss weights.
//   kRepresentationGrads in the forward pool run, per task, the gradient w.r.t. the shard's shared
//                     representation Z (and the head's); the shards' rows, side by side, are the whole batch's
//                     T x (B*D) matrix, which combine() turns into one dZ; then a second pool run
//                     backpropagates each shard's rows of dZ through the trunk.
// Modules with buffers written in forward (BatchNorm running statistics) get one replica per worker whose
// parameters alias the shared ones; after each step the replicas' buffers are averaged into the model and
// copied back (running statistics = mean over shards), as PyTorch's DataParallel without SyncBatchNorm.
//
//   auto grads = mtl::make_parallel_engine(model, tasks, weighting, mtl::EngineOptions{2, 1, 0});
//   grads->compute_gradients(batch, ctx);   // .grad of every trainable parameter = the batch's gradient
#pragma once

#include <memory>

#include "mtl/engine/engine.h"
#include "mtl/engine/reducer.h"
#include "mtl/engine/shard_plan.h"

namespace mtl {

/// `make_replica` builds a fresh model of the same architecture (needed only when the model has buffers,
/// e.g. BatchNorm); it may be empty otherwise. `reducer` defaults to an OrderedReducer over the workers.
std::unique_ptr<GradientEngine> make_parallel_engine(MultiTaskModel model, const std::vector<TaskSpec>& tasks,
                                                     Weighting& weighting, EngineOptions options,
                                                     ModelFactory make_replica = {},
                                                     std::unique_ptr<GradientReducer> reducer = nullptr);

}  // namespace mtl
