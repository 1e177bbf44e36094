// Trainer: the training loop. Opens the data, builds the optimizer and the gradient engine, runs epochs
// of steps (engine computes gradients, optimizer steps, schedule updates the rate), evaluates on the
// test split, logs to <run_dir>/metrics.jsonl, writes <run_dir>/checkpoint.pt atomically, and resumes
// from one exactly: the batch order is a function of (seed, epoch) and the RNG state is checkpointed.
#pragma once

#include <string>
#include <vector>

#include "mtl/engine/evaluate.h"
#include "mtl/engine/experiment.h"

namespace mtl {

struct TrainRunOptions {
  std::string resume_dir;  // continue the run saved in this directory
  bool progress = true;    // progress display on stderr
};

struct TrainSummary {
  std::string run_dir;
  EvalResult final_eval;
  int64_t steps = 0;
  std::vector<double> epoch_seconds;  // wall time of each epoch run in this process
  double data_wait_seconds = 0.0;     // time the engine waited for the loader
  bool interrupted = false;           // stopped by Ctrl-C (a checkpoint was written)
};

TrainSummary train(Experiment& ex, const TrainRunOptions& options);

/// `base` if it does not exist or is empty, else base-2, base-3, ... (earlier runs are never overwritten).
std::string fresh_run_dir(const std::string& base);

/// Sets intra-op threads and determinism for a run, and tunes malloc (configure_allocator).
void configure_torch_threads(const TrainerOptions& trainer);

}  // namespace mtl
