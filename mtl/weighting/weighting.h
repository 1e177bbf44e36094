// Weighting strategy interface: how per-task losses (or per-task gradients) become one update.
//
// The engine asks `needs()` what to compute each step:
//   kWeightedLoss       loss-based methods (EW, UW, DWA, ...). The engine computes the full-batch mean loss
//                       of every task first (reduced over shards), calls loss_weights() once, then
//                       backpropagates sum_t w_t * L_t in every shard. Because w_t = dF/dL_t is taken at the
//                       full-batch losses, any objective F(L_1..L_T) is optimised exactly with any number
//                       of shards or threads.
//   kSharedTaskGrads    gradient-based methods (PCGrad, MGDA, ...). The engine reduces a T x P matrix of
//                       per-task gradients of the shared (trunk) parameters and calls combine().
//   kRepresentationGrads per-task gradients w.r.t. the shared representation (MGDA-UB).
// A strategy never sees threads, shards or processes.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/serialize/archive.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mtl/core/registry.h"

namespace mtl {

class ConfigNode;

enum class GradientKind { kWeightedLoss, kSharedTaskGrads, kRepresentationGrads };

struct StepContext {
  int64_t step = 0;   // optimizer steps taken before this one
  int64_t epoch = 0;  // 0-based
};

class Weighting {
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
  /// Gradient-based methods: per-task shared gradients [T, P] -> one shared gradient [P].
  virtual at::Tensor combine(const at::Tensor& task_grads, const std::vector<double>& losses,
                             const StepContext& ctx);

  /// Learnable parameters of the strategy itself (e.g. log-variances); optimised with the model.
  virtual std::vector<at::Tensor> parameters() { return {}; }

  /// Called with the mean per-task training losses of each finished epoch (DWA and friends).
  virtual void on_epoch_end(const std::vector<double>& epoch_losses) {}

  /// Strategy state for checkpoints (running averages, learned values, ...).
  virtual void save(torch::serialize::OutputArchive& archive) const {}
  virtual void load(torch::serialize::InputArchive& archive) {}

  /// The effective task weights of the last step (logged every step).
  const std::vector<double>& last_weights() const { return last_weights_; }

 protected:
  std::vector<double> last_weights_;
};

struct WeightingContext {
  std::vector<std::string> task_names;
  std::vector<double> task_weights;  // each task's configured `weight`
};

using WeightingFactory =
    std::function<std::unique_ptr<Weighting>(const ConfigNode& options, const WeightingContext& ctx)>;
Registry<WeightingFactory>& weighting_registry();

}  // namespace mtl
