// MGDA (Sener & Koltun, 2018): the shared gradient is the minimum-norm point of the convex hull of the
// (normalised) task gradients, d = sum_t a_t g_t / n_t with a = argmin_{a in simplex} |sum_t a_t g_t / n_t|^2,
// found by Frank-Wolfe with exact line search (the paper's solver). Normalisers n_t:
//   none: 1 (the default);  l2: |g_t|;  loss: L_t;  loss+: L_t |g_t|  (the paper's choice, with Adam).
// The default is chosen by measurement with mtl's default optimizer (SGD lr 0.01, momentum 0.9; MultiFashion,
// 10 epochs of 60k, README): loss+ ended at 68.0% mean test accuracy, none at 73.1% (EW 74.9%). loss+ shrinks the step
// by the loss times the gradient norm, which starves SGD; with Adam (scale-free) it is harmless.
// A zero gradient makes the minimum-norm point zero (no common descent direction is needed).
// Effective weights: a_t / n_t (exact: d = sum_t (a_t / n_t) g_t).
//
// MGDA-UB (the paper's upper bound, Sener & Koltun 2018, section 3.3) is MGDA with `space: representation`:
// the same problem on the gradients w.r.t. the shared representation Z (the trunk's output) instead of the
// shared parameters; the engine backpropagates sum_t w_t dL_t/dZ through the trunk once (about the cost of
// EW) and heads get their own task's gradient, as in the paper's Algorithm 2. `method: mgda_ub` (and the C++
// class MgdaUb) is kept as an alias of `{method: mgda, space: representation}`.
//   YAML:  weighting: {method: mgda, normalization: none, max_iter: 250, tol: 1e-5}
//          weighting: {method: mgda, space: representation}
//   C++:   mtl::Mgda w(mtl::MgdaOptions().normalization("l2").max_iter(250).tol(1e-5));
//          w.set_space(mtl::GradientSpace::kRepresentation);
#pragma once

#include <torch/arg.h>

#include <string>

#include "mtl/weighting/gradient_method.h"

namespace mtl {

struct MgdaOptions {
  /// "none" (default: measured best with SGD, below), "l2", "loss" or "loss+" (the paper's choice, with Adam).
  TORCH_ARG(std::string, normalization) = "none";
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
  explicit Mgda(MgdaOptions options = {});
  at::Tensor combine(const at::Tensor& G, const std::vector<double>& losses, const StepContext& ctx) override;

 private:
  MgdaOptions options_;
};

/// MGDA-UB: MGDA in representation space (the alias `method: mgda_ub`).
class MgdaUb : public Mgda {
 public:
  explicit MgdaUb(MgdaOptions options = {}) : Mgda(std::move(options)) { set_space(GradientSpace::kRepresentation); }
};

}  // namespace mtl
