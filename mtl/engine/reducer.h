// Gradient reducers: how the workers' thread-local buffers of one step become one set of full-batch values.
// The parallel engine hands each reducer call the buffers of all its workers, in worker order; every value
// is a sum over workers (each worker's terms were already scaled by its shard's share of the batch), so the
// result is the full-batch value whatever the number of workers. What is reduced depends on what the
// weighting method needs (mtl/weighting/weighting.h): the per-task losses always, then either the gradient
// of sum_t w_t L_t, or the T x P matrix of per-task trunk gradients, or (gathered, not summed: each worker
// holds its own rows of the batch) the T x (B*D) matrix of per-task gradients w.r.t. the shared representation.
//
// OrderedReducer sums in worker order (deterministic: same numbers for the same thread count). A reducer
// across processes derives from it: reduce in the process first, then one collective (c10d allreduce) of
// the same buffers, without the engine, the weighting methods or the trainer changing.
//
//   mtl::OrderedReducer reducer(&pool);   // pool: the engine's WorkerPool, to split large reductions
//   reducer.reduce_gradients(buffers, params);
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace mtl {

class WorkerPool;

/// What one worker computed for its shard in one step.
struct WorkerBuffers {
  std::vector<double> losses;     // per task: shard mean loss x shard share of the batch (0 when absent)
  std::vector<bool> present;      // per task: the shard had the task's labels
  std::vector<at::Tensor> grads;  // per trainable parameter, or undefined (no gradient from this worker)
  at::Tensor task_rows;           // [T, P] per-task gradients of the shared parameters, or undefined
  at::Tensor rep_rows;            // [T, rows x D] per-task gradients w.r.t. the shard's representation, or undefined
  std::vector<double> gates;      // per task and expert (flat, task-major): the shard's summed gate weights / the
                                  // batch's rows (expert architectures; zeros for an empty shard), else empty
};

using WorkerBufferList = std::vector<const WorkerBuffers*>;

class GradientReducer {
 public:
  virtual ~GradientReducer() = default;
  /// Full-batch per-task losses (sum over workers) and presence (any worker).
  virtual void reduce_losses(const WorkerBufferList& workers, std::vector<double>& losses,
                             std::vector<bool>& present) = 0;
  /// Sets params[k].grad to the sum of the workers' grads[k] (undefined when no worker has one).
  virtual void reduce_gradients(const WorkerBufferList& workers, std::vector<at::Tensor>& params) = 0;
  /// The batch's mean gate weights: the sum of the workers' `gates` (every worker's has gates.size() entries).
  virtual void reduce_gates(const WorkerBufferList& workers, std::vector<double>& gates) = 0;
  /// Sum of the workers' task_rows (undefined when none has any). The result may be a buffer that is reused at
  /// the next call (or a worker's own matrix): valid until then.
  virtual at::Tensor reduce_task_rows(const WorkerBufferList& workers) = 0;
  /// The workers' rep_rows side by side in worker order ([T, B x D]: the whole batch's rows in batch order;
  /// undefined when none has any).
  virtual at::Tensor gather_representation_grads(const WorkerBufferList& workers) = 0;
  /// Column of this process's first row in the gathered matrix (0 in one process; across processes, the
  /// columns of the ranks before this one).
  virtual int64_t representation_offset() const { return 0; }
  /// BatchNorm running statistics and other buffers, already averaged over this process's workers: across
  /// processes, averaged over the ranks (in one process: nothing to do).
  virtual void reduce_buffers(std::vector<at::Tensor>& /*buffers*/) {}
  /// The engine's worker pool, for reducers that split large sums between workers (set once, by the engine).
  virtual void use_pool(WorkerPool* /*pool*/) {}
};

/// The batch's mean gate weights per task (StepResult::gates): `reducer.reduce_gates` of the workers' flat
/// task-major sums, split into one vector per task of `sizes[t]` experts; empty when `sizes` is.
std::vector<std::vector<double>> reduce_gate_means(GradientReducer& reducer, const WorkerBufferList& workers,
                                                   const std::vector<int64_t>& sizes);

/// Sums in worker order on the calling thread; gradients of large models (>= 2^20 elements) are split into
/// contiguous parameter ranges that the pool's workers sum in parallel (each range still in worker order).
class OrderedReducer : public GradientReducer {
 public:
  explicit OrderedReducer(WorkerPool* pool = nullptr) : pool_(pool) {}
  void reduce_losses(const WorkerBufferList& workers, std::vector<double>& losses,
                     std::vector<bool>& present) override;
  void reduce_gradients(const WorkerBufferList& workers, std::vector<at::Tensor>& params) override;
  void reduce_gates(const WorkerBufferList& workers, std::vector<double>& gates) override;
  at::Tensor reduce_task_rows(const WorkerBufferList& workers) override;
  at::Tensor gather_representation_grads(const WorkerBufferList& workers) override;
  void use_pool(WorkerPool* pool) override { pool_ = pool; }

 private:
  WorkerPool* pool_;
  std::vector<size_t> ranges_;  // worker i reduces parameters [ranges_[i], ranges_[i + 1]); cached per model
  size_t ranges_for_ = 0;       // the parameter count ranges_ was computed for
  at::Tensor task_rows_;        // the sum of the workers' task_rows, reused from step to step
};

}  // namespace mtl
