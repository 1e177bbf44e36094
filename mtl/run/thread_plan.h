// `trainer.threads: auto` (with intra_op_threads auto): which split of the cores into worker threads x intra-op
// threads trains this model fastest. Data-parallel workers win where single ops parallelise badly (small
// convolutions and GEMMs: MultiLeNet); intra-op threads win where one op is large enough to use every core
// (a 2048-wide MLP: one BLAS call per layer, whereas each worker would stream the whole weight matrices, and
// the workers' gradients must be summed). Rather than guess from the model's shape, the trainer times the
// gradient computation of its first training batch under each candidate plan, in turns (a stateless stand-in for the
// run's weighting method with the same gradient kind, so the method's state, the model's weights and its
// BatchNorm statistics are untouched) and trains with the fastest. The choice is printed, logged and saved in
// checkpoints, so `--resume` continues with it; explicit thread counts skip the probe.
//
//   mtl::ThreadPlan plan = mtl::probe_thread_plan(run, batch, /*cores=*/2);
//   options.threads = plan.workers;  options.intra_op_threads = plan.intra_op_threads;
#pragma once

#include <string>
#include <vector>

#include "mtl/core/batch.h"

namespace mtl {

struct Run;

struct ThreadPlan {
  int workers = 1;
  int intra_op_threads = 1;
  double step_ms = 0.0;  // the probe's best gradient-computation time (0 when not measured)
};

/// The plans probed on `cores` cores: w workers x cores/w intra-op threads for every divisor w, most workers
/// first.
std::vector<ThreadPlan> candidate_thread_plans(int cores);

/// Times `repeats` gradient computations of `batch` under every candidate plan, round-robin after two warm-up
/// rounds, and returns the plans with step_ms (the median) filled in, fastest first (ties: more workers first).
std::vector<ThreadPlan> probe_thread_plans(Run& run, const Batch& batch, int cores, int repeats = 5);

/// "2 workers x 1 intra-op thread (probe, ms per gradient step: 2x1 14.1 1x2 15.3)".
std::string describe_thread_plans(const std::vector<ThreadPlan>& probed);

}  // namespace mtl
