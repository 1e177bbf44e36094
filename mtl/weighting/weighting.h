// Weighting strategy interface: how per-task losses (or per-task gradients) become one update.
//
// The engine asks `needs()` what to compute each step:
//   kWeightedLoss       loss-based methods (EW, UW, DWA, ...). The engine computes the full-batch mean loss
//                       of every task first (reduced over shards), calls loss_weights() once, then
//                       backpropagates sum_t w_t * L_t in every shard. Because w_t = dF/dL_t is taken at the
//                       full-batch losses, any objective F(L_1..L_T) is optimised exactly with any number
//                       of shards or threads.
//   kSharedTaskGrads    gradient-based methods in parameter space (PCGrad, MGDA, ...). The engine reduces a
//                       T x P matrix of per-task gradients of the shared (trunk) parameters and calls combine().
//   kRepresentationGrads gradient-based methods in representation space (`weighting.space: representation`;
//                       MGDA-UB is MGDA there). The engine gathers the T x (B*D) matrix of per-task gradients
//                       w.r.t. the shared representation Z (the trunk's output for the whole batch, rows of
//                       the shards in batch order), calls combine() on it, and backpropagates the combined
//                       dZ through the trunk once; each head gets its own task's gradient.
// A strategy never sees threads, shards or processes. Nor does it see tasks without labels in a step (tasks
// from different datasets): the engine calls it through the *_for_step functions below, which pass only the
// present tasks' losses and gradient rows, with StepContext::tasks naming them; absent tasks get weight 0.
// Strategies with per-task state index it through ctx.task(i).
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/serialize/archive.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mtl/core/registry.h"
#include "mtl/core/stateful.h"

namespace mtl {

class ConfigNode;

enum class GradientKind { kWeightedLoss, kSharedTaskGrads, kRepresentationGrads };

/// Where a gradient-based method's per-task gradients live (`weighting.space`).
enum class GradientSpace { kParameters, kRepresentation };

/// One trainable shared (trunk) parameter, in the order of the columns of the engine's T x P matrix.
struct SharedParameter {
  std::string name;  // e.g. "backbone.fc2.weight"
  int64_t numel = 0;
};

struct StepContext {
  int64_t step = 0;   // optimizer steps taken before this one
  int64_t epoch = 0;  // 0-based
  /// Empty when every task is present in this step (the usual case); else the run's indices of the tasks
  /// the losses and gradient rows passed refer to, in order.
  std::vector<int64_t> tasks;
  /// The run's index of the i-th task passed.
  int64_t task(size_t i) const { return tasks.empty() ? static_cast<int64_t>(i) : tasks[i]; }
  /// The entries of a per-task vector (all tasks of the run) for the tasks passed.
  std::vector<double> select(const std::vector<double>& all) const;
};

class Weighting : public Stateful {
 public:
  virtual ~Weighting() = default;
  virtual GradientKind needs() const { return GradientKind::kWeightedLoss; }

  /// Coefficients w_t of each task's loss for this step, given full-batch mean losses.
  virtual std::vector<double> loss_weights(const std::vector<double>& losses, const StepContext& ctx) = 0;

  /// True when loss_weights() does not look at this step's losses (fixed weights, or weights from earlier
  /// epochs or from the strategy's own state). The engine then calls loss_weights() with an *empty* loss
  /// vector before the forward pass and runs each shard's forward and backward in one go (one barrier per
  /// step instead of two).
  virtual bool weights_ignore_step_losses() const { return false; }
  /// Gradient-based methods: per-task gradients [T, N] (of the N shared parameters, or of the B x D entries of
  /// the shared representation) -> one combined gradient [N].
  virtual at::Tensor combine(const at::Tensor& task_grads, const std::vector<double>& losses,
                             const StepContext& ctx);

  /// Called once before training with the trunk's trainable parameters (GradNorm's "last shared layer").
  virtual void set_shared_parameters(const std::vector<SharedParameter>& shared) {}

  /// FAMO: true when the strategy needs the full-batch task losses of the same batch *after* the optimizer
  /// step; the trainer then runs one extra forward pass (no gradients) and calls after_step().
  virtual bool needs_losses_after_step() const { return false; }
  virtual void after_step(const std::vector<double>& losses_after, const StepContext& ctx) {}

  /// Learnable parameters of the strategy itself (e.g. log-variances); optimised with the model.
  virtual std::vector<at::Tensor> parameters() { return {}; }

  /// Called with the mean per-task training losses of each finished epoch (DWA and friends).
  virtual void on_epoch_end(const std::vector<double>& epoch_losses) {}

  /// Strategy state for checkpoints (running averages, learned values, ...).
  void save(torch::serialize::OutputArchive& archive) const override {}
  void load(torch::serialize::InputArchive& archive) override {}

  /// The effective task weights of the last step (logged every step).
  const std::vector<double>& last_weights() const { return last_weights_; }

 protected:
  std::vector<double> last_weights_;
};

struct WeightingContext {
  std::vector<std::string> task_names;
  std::vector<double> task_weights;  // each task's configured `weight`
};

/// Indices of the present tasks, or empty when all are present.
std::vector<int64_t> subset_of(const std::vector<bool>& present);

/// The engine's entry points. Each restricts the problem to the present tasks (`present` has one entry per
/// task of the run), calls the strategy, and returns per-task results for all tasks (0 for absent ones).
/// With empty `losses` (weights_ignore_step_losses) only `present` decides the subset.
std::vector<double> loss_weights_for_step(Weighting& w, const std::vector<double>& losses,
                                          const std::vector<bool>& present, StepContext ctx);
/// `G` has a row per task of the run (absent tasks' rows are ignored); `weights` gets the effective weights.
at::Tensor combine_for_step(Weighting& w, const at::Tensor& G, const std::vector<double>& losses,
                            const std::vector<bool>& present, StepContext ctx, std::vector<double>& weights);
void after_step_for_step(Weighting& w, const std::vector<double>& losses_after, const std::vector<bool>& present,
                         StepContext ctx);

using WeightingFactory =
    std::function<std::unique_ptr<Weighting>(const ConfigNode& options, const WeightingContext& ctx)>;
Registry<WeightingFactory>& weighting_registry();

/// The method a `weighting:` section describes, as `mtl train` builds it: `method` (default ew) from the
/// registry with its options, and `space` (parameters | representation) for gradient-based methods; errors
/// name the section's keys.
std::unique_ptr<Weighting> make_weighting(const ConfigNode& node, const WeightingContext& ctx);

}  // namespace mtl
