// GradientEngine: computes one step's gradients for a batch and leaves them in the parameters' .grad;
// the Trainer then takes the optimizer step. The serial engine runs the batch in one piece; the
// parallel engine (per-thread gradient replicas) implements the same interface and must produce the
// same gradients.
#pragma once

#include <memory>
#include <vector>

#include "mtl/core/batch.h"
#include "mtl/core/task.h"
#include "mtl/model/multi_task_model.h"
#include "mtl/weighting/weighting.h"

namespace mtl {

struct StepResult {
  std::vector<double> losses;   // per task: full-batch mean loss (0 when the task is absent)
  std::vector<bool> present;    // whether the batch had the task's label
  std::vector<double> weights;  // the weights the strategy used
  double total_loss = 0.0;      // sum_t w_t L_t over present tasks
};

class GradientEngine {
 public:
  virtual ~GradientEngine() = default;
  /// Replaces the .grad of every trainable parameter with this batch's gradient.
  virtual StepResult compute_gradients(const Batch& batch, const StepContext& ctx) = 0;
  /// Full-batch mean task losses of `batch` at the current parameters, without gradients (FAMO evaluates
  /// the step's batch again after the update). Same dropout draws as compute_gradients at `ctx`; BatchNorm
  /// running statistics are left untouched. Absent tasks give 0.
  virtual std::vector<double> batch_losses(const Batch& batch, const StepContext& ctx) = 0;
};

/// Single-threaded engine (intra-op threads still apply). Engines keep references to `tasks` and `weighting`:
/// both must outlive the engine (pass a named vector, not a temporary such as `{task}`).
std::unique_ptr<GradientEngine> make_serial_engine(MultiTaskModel model, const std::vector<TaskSpec>& tasks,
                                                   Weighting& weighting);

/// Whether `batch` has each task's label field.
std::vector<bool> labels_present(const std::vector<TaskSpec>& tasks, const Batch& batch);

/// Per-task losses of `outputs` against `batch`'s targets; undefined tensors for absent tasks.
std::vector<at::Tensor> task_losses(const std::vector<TaskSpec>& tasks, const std::vector<at::Tensor>& outputs,
                                    const Batch& batch);

}  // namespace mtl
