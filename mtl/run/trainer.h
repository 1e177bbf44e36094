// The trainer: a loop over the batch plan. Each step is one Engine::step (mtl/engine/engine.h); what happens
// around steps (the metrics log, the progress display, checkpoints, evaluations, the freeze schedule, the
// weighting method's epoch hook) is done by observers (mtl/run/observers.h) that see each step's result and
// each epoch's end. The loop knows no model internals and no dataset types. A run resumes exactly from its
// checkpoint: the batch order is a function of (seed, epoch) and the position is checkpointed.
//
//   mtl::Run run = mtl::assemble(mtl::Config::load("configs/multi_fashion.yaml"));
//   mtl::TrainSummary s = mtl::train(run, {});
//   std::cout << mtl::format_eval_table(s.final_eval);
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "mtl/engine/engine.h"
#include "mtl/run/assembler.h"
#include "mtl/run/evaluate.h"
#include "mtl/run/observers.h"
#include "mtl/run/run_dir.h"

namespace mtl {

class ProcessGroup;

struct TrainRunOptions {
  std::string resume_dir;  // continue the run saved in this directory
  bool progress = true;    // progress display on stderr
  /// Distributed training: this rank's process group (mtl/dist/process_group.h); null for one process. Each
  /// rank trains on its rows of every global batch (trainer.batch_size) and the gradients are reduced across
  /// ranks; rank 0 alone writes the run directory (config, metrics, checkpoints) and shows progress.
  std::shared_ptr<ProcessGroup> group;
  /// More observers (not owned), called after the built-in ones: callbacks of an application, the
  /// benchmark's step timer (tools/bench_train.cpp).
  std::vector<TrainObserver*> observers;
};

struct TrainSummary {
  std::string run_dir;
  EvalResult final_eval;
  int64_t steps = 0;
  std::vector<double> epoch_seconds;  // wall time of each epoch run in this process
  double data_wait_seconds = 0.0;     // time the engine waited for the loader
  bool interrupted = false;           // stopped by Ctrl-C or SIGTERM (a checkpoint was written)
  int64_t skipped_steps = 0;          // steps not applied for non-finite values (trainer.on_nonfinite: skip)
};

TrainSummary train(Run& run, const TrainRunOptions& options);

/// With `trainer.resume: auto`, `run_dir` when it holds a checkpoint (the run to continue), else "".
std::string auto_resume_dir(const TrainerOptions& trainer);

/// Sets the main thread's intra-op threads (every core the workers use) and determinism for a run, and
/// tunes malloc (configure_allocator).
void configure_torch_threads(const EngineOptions& engine, bool deterministic);

}  // namespace mtl
