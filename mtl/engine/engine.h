// The training step. An Engine takes one batch and does the whole optimizer step: per-task losses and
// gradients on its worker threads (a GradientEngine), the reduction of the workers' buffers (a
// GradientReducer, mtl/engine/reducer.h), the weighting method's combination, the non-finite guard (a step
// with a non-finite loss or gradient is not applied: mtl/engine/nonfinite.h), penalties and clipping of the
// parameter groups, the optimizer step, the weighting method's post-step hook (FAMO's re-evaluation),
// max-norm constraints and the BatchNorm statistics sync. It returns what the step measured. The trainer
// loop (mtl/run/trainer.h) only feeds batches and hands results to its observers.
//
//   auto engine = mtl::make_sync_engine(model, tasks, weighting, groups, mtl::EngineOptions{2, 1, 0});
//   mtl::StepResult r = engine->step(batch, mtl::StepContext{step, epoch, {}});
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "mtl/core/batch.h"
#include "mtl/core/precision.h"
#include "mtl/core/task.h"
#include "mtl/engine/diagnostics.h"
#include "mtl/model/multi_task_model.h"
#include "mtl/weighting/weighting.h"

namespace mtl {

class GradientReducer;
class ParamGroups;

/// How the model is split between threads (`engine.model_parallel`), besides data parallelism.
enum class ModelParallel {
  kNone,      // every thread runs the whole model on its shard of the batch
  kTasks,     // the trunk runs once per shard; the task heads run on separate threads
  kPipeline,  // the backbone's stages run on separate threads, micro-batches flowing through them (GPipe)
};

/// How the step runs: the one place that carries thread counts and the dropout seed.
struct EngineOptions {
  int threads = 1;               // worker threads (data-parallel shards of each batch)
  int intra_op_threads = 1;      // OpenMP/BLAS threads per worker (threads x intra_op <= cores)
  uint64_t seed = 0;             // dropout masks are drawn from (seed, step, shard)
  int first_shard = 0;           // index of this process's first shard among every process's (distributed: the
                                 // rank x threads), so a shard draws the same dropout masks wherever it runs
  bool dynamic_balance = false;  // shard sizes follow each worker's measured examples/s
  bool async = false;            // Hogwild!: each worker applies its shard's update at once (mtl/engine/async_engine.h)
  bool lookahead = true;         // async: momentum look-ahead for stale gradients
  int64_t diagnostics_every = 0;  // gradient diagnostics on the first step and every N-th (0: off; sync engines)
  bool keep_state_on_skip = false;  // sync: the weighting method's state is copied before each step and put back
                                   // when the step is not applied (trainer.on_nonfinite: skip)
  Precision precision = Precision::kFloat32;  // forward passes of training steps (trainer.precision)
  ModelParallel model_parallel = ModelParallel::kNone;
  int model_threads = 0;   // model parallelism: threads per copy of the model (0: all `threads`); `threads /
                           // model_threads` copies run data-parallel shards of each batch
  int micro_batches = 0;   // pipeline: micro-batches per shard (0: 4 per stage)
  bool probe_plan = false;       // threads and intra-op threads were `auto`: the trainer times the candidate
                                 // plans on the first batch and keeps the fastest (mtl/run/thread_plan.h)
  /// The reducer of each parallel engine built from these options (across processes: mtl/dist's
  /// ProcessReducer); empty: the in-process OrderedReducer.
  std::function<std::unique_ptr<GradientReducer>()> make_reducer;
};

/// Wall time of a step's parts, in seconds.
struct StepTimings {
  double gradients = 0.0;  // forward, backward and the reduction
  double update = 0.0;     // penalties, clipping, optimizer step, constraints, post-step hooks
};

struct StepResult {
  int64_t step = 0;             // the optimizer step this result belongs to (StepContext::step)
  int64_t examples = 0;         // rows of the batch
  std::vector<double> losses;   // per task: full-batch mean loss (0 when the task is absent)
  std::vector<bool> present;    // whether the batch had the task's label
  std::vector<double> weights;  // effective task weights of the step (mtl/weighting/weighting.h)
  double total_loss = 0.0;      // sum_t w_t L_t over present tasks
  double lr = 0.0;              // the run's learning rate at this step (the default group's)
  double penalty = 0.0;         // explicit L1/L2 penalties of the step
  std::vector<std::vector<double>> gates;  // per task: the batch's mean gate weight per expert (expert
                                           // architectures, sync engines), else empty
  std::optional<GradientDiagnostics> diagnostics;  // on diagnostic steps (EngineOptions::diagnostics_every)
  std::string nonfinite;  // sync engines: why this step was not applied (a non-finite loss or gradient,
                          // mtl/engine/nonfinite.h); empty when it was
  StepTimings timings;
};

/// One optimizer step per call.
class Engine {
 public:
  virtual ~Engine() = default;
  /// Trains on `batch`. Sync engines return exactly this step's result; the async engine keeps up to one
  /// batch in flight and returns the results of the batches finished so far (possibly none), in order.
  virtual std::vector<StepResult> step(const Batch& batch, const StepContext& ctx) = 0;
  /// Waits for batches still in flight and returns their results (sync engines: none).
  virtual std::vector<StepResult> finish() { return {}; }
  /// The set of trainable parameters changed (freeze schedule): rebuild what depends on it.
  virtual void trainable_changed() = 0;
};

/// Computes one step's gradients for a batch and leaves them in the parameters' .grad (the first half of a
/// sync Engine::step; tests compare it with references). The serial engine runs the batch in one piece; the
/// parallel engine (per-thread gradient replicas) must produce the same gradients.
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

/// Builds another model of the same architecture (replicas for models with BatchNorm buffers).
using ModelFactory = std::function<MultiTaskModel()>;

/// Single-threaded gradients (intra-op threads still apply). Engines keep references to `tasks` and
/// `weighting`: both must outlive the engine (pass a named vector, not a temporary such as `{task}`).
std::unique_ptr<GradientEngine> make_serial_engine(MultiTaskModel model, const std::vector<TaskSpec>& tasks,
                                                   Weighting& weighting);

/// The synchronous step: `options.threads` workers compute the gradients (mtl/engine/parallel_engine.h),
/// then `groups` apply them. `make_replica` is needed only for models with buffers (BatchNorm).
/// `tasks`, `weighting` and `groups` must outlive the engine.
std::unique_ptr<Engine> make_sync_engine(MultiTaskModel model, const std::vector<TaskSpec>& tasks,
                                         Weighting& weighting, ParamGroups& groups, EngineOptions options,
                                         ModelFactory make_replica = {});

/// make_sync_engine or make_async_engine, as `options.async` says.
std::unique_ptr<Engine> make_engine(MultiTaskModel model, const std::vector<TaskSpec>& tasks, Weighting& weighting,
                                    ParamGroups& groups, EngineOptions options, ModelFactory make_replica = {});

/// The trunk's trainable parameters, in the order of the columns of the T x P matrix of per-task gradients.
std::vector<SharedParameter> trainable_shared_parameters(MultiTaskModelImpl& model);

/// Whether `batch` has each task's label field.
std::vector<bool> labels_present(const std::vector<TaskSpec>& tasks, const Batch& batch);

/// Task `task`'s loss of `output` against `batch`'s target (float32); undefined when the batch has no such label
/// or the output is undefined.
at::Tensor task_loss(const TaskSpec& task, const at::Tensor& output, const Batch& batch);

/// Per-task losses of `outputs` against `batch`'s targets; undefined tensors for absent tasks.
std::vector<at::Tensor> task_losses(const std::vector<TaskSpec>& tasks, const std::vector<at::Tensor>& outputs,
                                    const Batch& batch);
/// The training losses of a forward pass: task_losses of its outputs plus each task's architecture
/// regulariser (ModelOutput::regularizers), where the task is present.
std::vector<at::Tensor> task_losses(const std::vector<TaskSpec>& tasks, const ModelOutput& out, const Batch& batch);

}  // namespace mtl
