// Task model parallelism (`engine.model_parallel: tasks`): the trunk runs once per shard, then the task heads
// (forward, loss, backward to the trunk's output) run on separate threads, and the trunk's backward pass starts
// from the heads' gradients of its output summed in task order. For models with many tasks or large heads:
// each thread keeps only its own heads' weights hot, and the heads' matrix products see the whole shard.
//
// The trunk's output is cut from its graph: every tensor a head reads (a task's features, the per-token
// features, feature maps) becomes a leaf. Head t's backward pass gives its own parameters' gradients and
// dL_t/d(leaf); the trunk's backward pass gets sum_t w_t dL_t/d(leaf) (t = 0, 1, ...) and the tasks'
// regulariser terms. With `model_threads` threads per model copy, `threads / model_threads` copies run
// data-parallel shards of each batch, their buffers reduced in shard order as the data-parallel engine's
// (mtl/engine/parallel_engine.h): the gradients are the full-batch gradients, the same as the serial engine's.
// Loss-based weighting methods only (the weights come from the reduced full-batch losses).
//
//   EngineOptions o;
//   o.threads = 4; o.model_threads = 2; o.model_parallel = ModelParallel::kTasks;   // 2 shards x 2 head threads
//   auto grads = mtl::make_task_parallel_engine(model, tasks, weighting, o);
#pragma once

#include <memory>

#include "mtl/engine/engine.h"
#include "mtl/engine/reducer.h"

namespace mtl {

/// `make_replica` is needed when the model has buffers (BatchNorm) and there are several shards. Throws
/// std::invalid_argument when the weighting method is not loss-based or the thread counts do not divide.
std::unique_ptr<GradientEngine> make_task_parallel_engine(MultiTaskModel model, const std::vector<TaskSpec>& tasks,
                                                          Weighting& weighting, EngineOptions options,
                                                          ModelFactory make_replica = {},
                                                          std::unique_ptr<GradientReducer> reducer = nullptr);

/// Copies of the model that run data-parallel shards under model parallelism: threads / model_threads
/// (model_threads 0 = all threads); throws std::invalid_argument when model_threads does not divide threads.
int model_parallel_copies(const EngineOptions& options);

}  // namespace mtl
