// Gradient diagnostics (`diagnostics: {every: N}`): how the tasks' gradients of the shared parameters relate on
// a step. The engine builds them from the T x P matrix G of per-task trunk gradients, reduced over every shard
// (threads and processes) exactly as the gradient-based methods see it, so they describe the full batch
// whatever the thread count. Gradient methods have G anyway; loss-based methods get it from T extra backward
// passes on diagnostic steps (the step's update is unchanged). Representation-space methods are diagnosed on
// the T x (B*D) gradients w.r.t. the shared representation they combine.
//
//   GradientDiagnostics d = diagnose_task_gradients(G, present);
//   d.cosine[0][1] < 0;  // tasks 0 and 1 conflict on this step
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

namespace mtl {

struct GradientDiagnostics {
  std::vector<double> norms;                // per task: |g_t| (0 for a task without labels in the step)
  std::vector<std::vector<double>> cosine;  // T x T: g_i.g_j / (|g_i| |g_j|); NaN where either gradient is zero
                                            // or its task absent; 1 on the diagonal of present nonzero rows
  double conflict_share = 0.0;  // share of the pairs i < j with a defined cosine that are negative (NaN: no pair)
  double combined_norm = 0.0;   // |d|: the combined trunk gradient handed to the optimizer (before clipping)
  bool representation = false;  // rows are gradients w.r.t. the shared representation (weighting.space)
};

/// Norms, cosines and conflict share of the rows of G [T, N] (in float64, from G G^T); `present` has one entry
/// per row. combined_norm is left 0 (the engine measures it on the reduced trunk gradient).
GradientDiagnostics diagnose_task_gradients(const at::Tensor& G, const std::vector<bool>& present);

/// Whether the step after `steps_taken` optimizer steps is a diagnostic one for `every` (0: never): the first
/// step and then every `every`-th (logged steps 1, N, 2N, ...; the `train` lines' rhythm).
bool is_diagnostic_step(int64_t steps_taken, int64_t every);

}  // namespace mtl
