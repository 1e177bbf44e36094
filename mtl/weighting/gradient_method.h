// Shared pieces of the gradient-based weighting methods (PCGrad, MGDA, CAGrad, ...): they receive the
// T x P matrix G of per-task gradients of the shared parameters (reduced over all threads, so every
// method sees the full-batch gradients for any thread count) and return one shared gradient. Heads are
// trained on their own task's loss (weight 1). Computation is in float64 on the small T x T Gram matrix
// wherever the method allows; the result has G's dtype.
//
// Effective weights: every gradient method sets last_weights_ (logged each step) to coefficients a_t with
// combined gradient d = sum_t a_t g_t. Methods that build d from G's rows define them exactly (MGDA, PCGrad,
// GradVac, ConFIG, ...); where d is not such a combination (GradDrop masks single coordinates, DB-MTL adds
// moving averages of earlier steps) they are least_squares_weights(G, d).
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <string>
#include <vector>

#include "mtl/weighting/weighting.h"

namespace mtl {

class GradientWeighting : public Weighting {
 public:
  GradientKind needs() const override {
    return space_ == GradientSpace::kRepresentation ? GradientKind::kRepresentationGrads
                                                    : GradientKind::kSharedTaskGrads;
  }
  std::vector<double> loss_weights(const std::vector<double>& losses, const StepContext&) override {
    return std::vector<double>(losses.size(), 1.0);
  }

  /// Where combine()'s rows live: the shared parameters (default) or the shared representation (one row of
  /// B x D entries per task). Throws mtl::Error ("<method>.space") when representation_space_refusal() says why
  /// the method's definition does not carry over.
  void set_space(GradientSpace space);
  GradientSpace space() const { return space_; }
  /// Empty when the method is defined in representation space; else one line saying why it is not.
  virtual std::string representation_space_refusal() const { return ""; }

 protected:
  /// last_weights_ = w (a float64 vector with one entry per task row).
  void set_last_weights(const at::Tensor& w);

 private:
  GradientSpace space_ = GradientSpace::kParameters;
};

/// G G^T in float64 (accumulated in float64 over column blocks, without a float64 copy of G).
at::Tensor gram_matrix(const at::Tensor& G);

// The small solvers below work on T x T problems (T = tasks). They run in plain float64 arithmetic on
// std::vector, not tensor ops: for T <= ~16 each tensor op's dispatch costs more than its arithmetic, and a
// solver runs tens to thousands of them per step on the training's critical path.

/// A row-major T x T float64 matrix (a Gram matrix) as a plain vector.
std::vector<double> small_matrix(const at::Tensor& M);

/// Euclidean projection of v onto the probability simplex {x >= 0, sum x = 1}.
at::Tensor project_to_simplex(const at::Tensor& v);
std::vector<double> project_to_simplex(std::vector<double> v);

/// argmin_x 1/2 x^T M x over the simplex by Frank-Wolfe with exact line search (MGDA's solver, Sener &
/// Koltun 2018): starts from the best pair of vertices, stops when a step changes x by < tol.
at::Tensor min_norm_frank_wolfe(const at::Tensor& M, int max_iter, double tol);

/// argmin_u 1/2 u^T M u subject to u >= lower (elementwise); M symmetric positive definite.
/// Cyclic coordinate descent, exact on each coordinate, to a relative change below 1e-13.
at::Tensor box_qp(const at::Tensor& M, const at::Tensor& lower);

/// Minimise a smooth convex f over the simplex: accelerated projected gradient with backtracking.
std::vector<double> minimize_on_simplex(const std::function<double(const std::vector<double>&)>& f,
                                        const std::function<std::vector<double>(const std::vector<double>&)>& grad,
                                        std::vector<double> x0, int max_iter = 5000, double tol = 1e-13);

/// x = A^{-1} b for a symmetric positive definite T x T matrix A (row-major), by Cholesky; false when A is
/// not numerically positive definite.
bool solve_spd(std::vector<double> A, std::vector<double>& b);

/// G G^T + reg_eps * (trace / T) * I: unique solutions for dependent gradients (UPGrad, DualProj).
at::Tensor regularised_gram(const at::Tensor& G, double reg_eps);

/// The order in which task i visits the other tasks (PCGrad, GradVac): a permutation of 0..T-1 drawn from
/// (seed, step, i) when `random`, else 0..T-1.
std::vector<int64_t> task_order(int64_t T, int64_t i, int64_t step, uint64_t seed, bool random);

/// sum_t w_t G_t in G's dtype (w rounded to it).
at::Tensor weighted_rows(const at::Tensor& G, const at::Tensor& w);

/// The least-squares coefficients of d [P] on the rows of G [T, P]: a = argmin_a |d - G^T a|^2, solved in
/// float64 through the T x T Gram matrix, (G G^T) a = G d, with its pseudo-inverse (relative cut-off 1e-12), so
/// that dependent rows (identical, opposite, zero gradients) get the minimum-norm solution. The residual
/// d - G^T a is orthogonal to every row of G; it is zero exactly when d lies in the span of the rows.
at::Tensor least_squares_weights(const at::Tensor& G, const at::Tensor& d);

}  // namespace mtl
