// MGDA (Sener & Koltun, 2018): the shared gradient is the minimum-norm point of the convex hull of the
// (normalised) task gradients, d = sum_t a_t g_t / n_t with a = argmin_{a in simplex} |sum_t a_t g_t / n_t|^2,
// found by Frank-Wolfe with exact line search (the paper's solver). Normalisers n_t:
//   none: 1;  l2: |g_t|;  loss: L_t;  loss+: L_t |g_t|  (the paper's default).
// A zero gradient makes the minimum-norm point zero (no common descent direction is needed).
// Effective weights: a_t / n_t (exact: d = sum_t (a_t / n_t) g_t).
//
// MGDA-UB (the paper's upper bound, `method: mgda_ub`, same options): the same problem on the gradients
// w.r.t. the shared representation Z (the trunk's output) instead of the shared parameters. The engine
// only needs the T x T Gram matrix of dL_t/dZ (one backward pass through the heads per task), then
// backpropagates sum_t w_t dL_t/dZ through the trunk once: about the cost of EW. Heads get their own
// task's gradient, as in the paper's Algorithm 2. Its weights w_t = a_t / n_t are the logged weights.
//   YAML:  weighting: {method: mgda, normalization: loss+, max_iter: 250, tol: 1e-5}
//   C++:   mtl::Mgda w(mtl::MgdaOptions().normalization("l2").max_iter(250).tol(1e-5));
//          mtl::MgdaUb ub(mtl::MgdaOptions().normalization("none"));
#pragma once

#include <torch/arg.h>

#include <string>

#include "mtl/weighting/gradient_method.h"

namespace mtl {

struct MgdaOptions {
  /// "none", "l2", "loss" or "loss+".
  TORCH_ARG(std::string, normalization) = "loss+";
  /// Frank-Wolfe iterations, > 0.
  TORCH_ARG(int, max_iter) = 250;
  /// Frank-Wolfe stops when a step changes the weights by less than this (L1), > 0.
  TORCH_ARG(double, tol) = 1e-5;

 public:
  static MgdaOptions from_config(const ConfigNode& options);
};

class Mgda : public GradientWeighting {
 public:
  using Options = MgdaOptions;
  explicit Mgda(MgdaOptions options = {}) : Mgda(std::move(options), false) {}

  GradientKind needs() const override {
    return representation_ ? GradientKind::kRepresentationGrads : GradientKind::kSharedTaskGrads;
  }
  at::Tensor combine(const at::Tensor& G, const std::vector<double>& losses, const StepContext& ctx) override;
  std::vector<double> representation_weights(const at::Tensor& gram, const std::vector<double>& losses,
                                             const StepContext& ctx) override;

 protected:
  Mgda(MgdaOptions options, bool representation);

 private:
  at::Tensor weights_from_gram(const at::Tensor& M, const std::vector<double>& losses);

  MgdaOptions options_;
  bool representation_;
};

/// MGDA-UB: needs() == kRepresentationGrads.
class MgdaUb : public Mgda {
 public:
  explicit MgdaUb(MgdaOptions options = {}) : Mgda(std::move(options), true) {}
};

}  // namespace mtl
