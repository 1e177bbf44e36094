// Effective weights of the gradient methods (last_weights(), logged as each step's weights): coefficients a_t
// with combined gradient d = sum_t a_t g_t where the method defines them, else the least-squares coefficients
// of d on the task gradients. Hand-computed cases for PCGrad, GradVac, ConFIG and GradDrop (derivations in the
// comments), the least-squares helper on its own, and for every gradient method the property that
// sum_t a_t g_t reproduces d (exact methods) or leaves a residual orthogonal to every g_t (least squares).
#include <torch/torch.h>

#include <cmath>
#include <set>

#include "mtl/weighting/methods.h"
#include "test_util.h"
#include "weighting/weighting_test_util.h"

namespace {

at::Tensor rows(std::vector<std::vector<double>> r) {
  std::vector<at::Tensor> out;
  for (auto& row : r) out.push_back(torch::tensor(row, torch::kDouble));
  return torch::stack(out);
}

void expect_weights(const std::vector<double>& got, const std::vector<double>& want, double tol,
                    const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << what << " a[" << i << "]";
}

void expect_tensor(const at::Tensor& got, const std::vector<double>& want, double tol, const std::string& what) {
  ASSERT_EQ(got.numel(), static_cast<int64_t>(want.size())) << what;
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(got[static_cast<int64_t>(i)].item<double>(), want[i], tol) << what << " d[" << i << "]";
}

at::Tensor as_tensor(const std::vector<double>& v) { return torch::tensor(v, torch::kDouble); }

}  // namespace

// g1 = (1, 0), g2 = (-1, 1): g1.g2 = -1 < 0, |g1|^2 = 1, |g2|^2 = 2.
//   g1' = g1 - (-1/2) g2 = g1 + 0.5 g2 = (0.5, 0.5)
//   g2' = g2 - (-1/1) g1 = g2 + 1.0 g1 = (0, 1)
//   d = (0.5, 1.5) = (1 + 1.0) g1 + (1 + 0.5) g2:  a = (2, 1.5).
// Three tasks, order fixed, g1 = (1,0,0), g2 = (-1,1,0), g3 = (0,-1,1) (|g|^2 = 1, 2, 2):
//   g1: . g2 = -1 -> + 0.5 g2 = (0.5, 0.5, 0);  . g3 = -0.5 -> + 0.25 g3 = (0.5, 0.25, 0.25)   row (1, 0.5, 0.25)
//   g2: . g1 = -1 -> + 1 g1 = (0, 1, 0);        . g3 = -1 -> + 0.5 g3 = (0, 0.5, 0.5)           row (1, 1, 0.5)
//   g3: . g1 = 0 (no conflict);                 . g2 = -1 -> + 0.5 g2 = (-0.5, -0.5, 1)         row (0, 0.5, 1)
//   d = (0, 0.25, 1.75), a = column sums = (2, 2, 1.75).
TEST(EffectiveWeights, PcGradHandComputed) {
  mtl::PcGrad w(mtl::PcGradOptions().order("fixed"));
  at::Tensor d = w.combine(rows({{1, 0}, {-1, 1}}), {1, 1}, {});
  expect_tensor(d, {0.5, 1.5}, 1e-15, "pcgrad 2 tasks");
  expect_weights(w.last_weights(), {2.0, 1.5}, 1e-15, "pcgrad 2 tasks");
  d = w.combine(rows({{1, 0, 0}, {-1, 1, 0}, {0, -1, 1}}), {1, 1, 1}, {});
  expect_tensor(d, {0.0, 0.25, 1.75}, 1e-15, "pcgrad 3 tasks");
  expect_weights(w.last_weights(), {2.0, 2.0, 1.75}, 1e-15, "pcgrad 3 tasks");
  // No conflict: nothing projected, every weight 1.
  w.combine(rows({{1, 0}, {1, 1}}), {1, 1}, {});
  expect_weights(w.last_weights(), {1.0, 1.0}, 0, "pcgrad without conflict");
}

// beta = 1, so each target similarity becomes the last cosine seen.
// Step 0: g1 = (1, 0), g2 = (3, 4): cos = 3/5 = 0.6 >= target 0, nothing moves (a = (1, 1)); both targets -> 0.6.
// Step 1: g1 = (1, 0), g2 = (0, 2): cos = 0 < 0.6, sqrt(1 - 0.6^2) = 0.8.
//   g1' = g1 + g2 |g1| (0.6 * 1 - 0 * 0.8) / (|g2| 0.8) = g1 + 0.375 g2 = (1, 0.75)    (cos with g2: 0.75/1.25 = 0.6)
//   g2' = g2 + g1 |g2| (0.6 * 1 - 0 * 0.8) / (|g1| 0.8) = g2 + 1.5 g1 = (1.5, 2)       (cos with g1: 1.5/2.5 = 0.6)
//   d = (2.5, 2.75) = (1 + 1.5) g1 + (1 + 0.375) g2:  a = (2.5, 1.375).
TEST(EffectiveWeights, GradVacHandComputed) {
  mtl::GradVac w(2, mtl::GradVacOptions().beta(1.0).order("fixed"));
  at::Tensor d = w.combine(rows({{1, 0}, {3, 4}}), {1, 1}, {0, 0});
  expect_tensor(d, {4, 4}, 1e-15, "gradvac step 0");
  expect_weights(w.last_weights(), {1.0, 1.0}, 0, "gradvac step 0");
  d = w.combine(rows({{1, 0}, {0, 2}}), {1, 1}, {1, 0});
  expect_tensor(d, {2.5, 2.75}, 1e-12, "gradvac step 1");
  expect_weights(w.last_weights(), {2.5, 1.375}, 1e-12, "gradvac step 1");
}

// g1 = (2, 0), g2 = (3, 4): unit rows u1 = (1, 0), u2 = (0.6, 0.8), U U^T = [[1, 0.6], [0.6, 1]],
//   b = (U U^T)^-1 1 = (1 / 0.64) (1 - 0.6, 1 - 0.6) = (0.625, 0.625),
//   x = U^T b = 0.625 (1.6, 0.8) = (1, 0.5), |x| = sqrt(5)/2, v = (2, 1)/sqrt(5),
//   length = g1.v + g2.v = (4 + 10)/sqrt(5), d = length v = 14/5 (2, 1) = (5.6, 2.8),
//   a_t = length b_t / (|g_t| |x|) = 3.5 / |g_t| = (1.75, 0.7):  1.75 (2, 0) + 0.7 (3, 4) = (5.6, 2.8).
// With a third, zero gradient: it is left out of U and gets a_3 = 0; the rest is unchanged.
// Orthogonal g1 = (1, 0), g2 = (0, 2): b = (1, 1), x = (1, 1), length = 3/sqrt(2), d = (1.5, 1.5),
//   a = 1.5 (1/1, 1/2) = (1.5, 0.75).
TEST(EffectiveWeights, ConfigHandComputed) {
  mtl::ConFig w;
  at::Tensor d = w.combine(rows({{2, 0}, {3, 4}}), {1, 1}, {});
  expect_tensor(d, {5.6, 2.8}, 1e-12, "config");
  expect_weights(w.last_weights(), {1.75, 0.7}, 1e-12, "config");
  d = w.combine(rows({{2, 0}, {0, 0}, {3, 4}}), {1, 1, 1}, {});
  expect_tensor(d, {5.6, 2.8}, 1e-12, "config with a zero gradient");
  expect_weights(w.last_weights(), {1.75, 0.0, 0.7}, 1e-12, "config with a zero gradient");
  d = w.combine(rows({{1, 0}, {0, 2}}), {1, 1}, {});
  expect_tensor(d, {1.5, 1.5}, 1e-12, "config orthogonal");
  expect_weights(w.last_weights(), {1.5, 0.75}, 1e-12, "config orthogonal");
}

// g1 = (2, 0, 1), g2 = (0, 1, -1). Coordinates 1 and 2 have one non-zero component each (purity 1): kept.
// Coordinate 3 has purity P = (1 + 0/2)/2 = 0.5: the draw U keeps g1's +1 (U < 0.5) or g2's -1 (U > 0.5).
// Least squares: M = G G^T = [[5, -1], [-1, 2]], det 9, M^-1 = [[2, 1], [1, 5]] / 9.
//   d = (2, 1,  1): G d = (5, 0), a = (10, 5)/9;  residual d - G^T a = (-2, 4, 4)/9, orthogonal to g1 and g2.
//   d = (2, 1, -1): G d = (3, 2), a = (8, 13)/9;  residual (2, -4, -4)/9, orthogonal to both.
TEST(EffectiveWeights, GradDropHandComputed) {
  mtl::GradDrop w;
  at::Tensor G = rows({{2, 0, 1}, {0, 1, -1}});
  std::set<double> seen;
  for (int64_t step = 0; step < 16; ++step) {
    at::Tensor d = w.combine(G, {1, 1}, {step, 0});
    const double third = d[2].item<double>();
    seen.insert(third);
    if (third > 0) {
      expect_tensor(d, {2, 1, 1}, 0, "graddrop kept g1");
      expect_weights(w.last_weights(), {10.0 / 9, 5.0 / 9}, 1e-14, "graddrop kept g1");
    } else {
      expect_tensor(d, {2, 1, -1}, 0, "graddrop kept g2");
      expect_weights(w.last_weights(), {8.0 / 9, 13.0 / 9}, 1e-14, "graddrop kept g2");
    }
  }
  EXPECT_EQ(seen.size(), 2u) << "16 draws should keep each sign at least once";
  // Agreeing signs: nothing dropped, d = g1 + g2, a = (1, 1).
  w.combine(rows({{1, 0, 2}, {3, 1, 0}}), {1, 1}, {0, 0});
  expect_weights(w.last_weights(), {1.0, 1.0}, 1e-14, "graddrop without conflict");
}

// Least squares on its own: in the span it is exact; dependent rows get the minimum-norm solution.
//   g1 = g2 = (1, 2), d = (3, 6) = 3 g: minimum-norm a with a1 + a2 = 3 is (1.5, 1.5).
//   g1 = (1, 0), g2 = (0, 0), d = (2, 5): a = (2, 0), residual (0, 5) orthogonal to g1.
TEST(EffectiveWeights, LeastSquaresWeights) {
  at::Tensor a = mtl::least_squares_weights(rows({{1, 2}, {1, 2}}), as_tensor({3, 6}));
  expect_tensor(a, {1.5, 1.5}, 1e-12, "identical rows");
  a = mtl::least_squares_weights(rows({{1, 0}, {0, 0}}), as_tensor({2, 5}));
  expect_tensor(a, {2.0, 0.0}, 1e-12, "zero row");
  a = mtl::least_squares_weights(rows({{1, 0, 0}, {1, 1, 0}}), as_tensor({3, 1, 7}).to(at::kFloat));
  expect_tensor(a, {2.0, 1.0}, 1e-12, "float32 d, out-of-span component");
}

namespace {

struct Method {
  std::string yaml;
  bool exact;  // the method defines a_t; else least squares
};

// The gradient methods, with options that make their effective weights non-trivial.
std::vector<Method> gradient_methods() {
  return {{"{method: mgda, max_iter: 1000, tol: 1e-12}", true},
          {"{method: mgda, normalization: none}", true},
          {"{method: pcgrad}", true},
          {"{method: pcgrad, order: fixed}", true},
          {"{method: cagrad}", true},
          {"{method: imtl}", true},
          {"{method: imtl, part: gradient}", true},
          {"{method: nash_mtl}", true},
          {"{method: upgrad}", true},
          {"{method: dualproj}", true},
          {"{method: gradvac, beta: 0.5}", true},
          {"{method: aligned_mtl}", true},
          {"{method: config}", true},
          {"{method: gradnorm, layer: all}", true},
          {"{method: graddrop}", false},
          {"{method: graddrop, leak: 0.3}", false},
          {"{method: db_mtl}", false}};
}

std::vector<at::Tensor> problems() {
  torch::manual_seed(14);
  std::vector<double> g{0.5, -1.0, 2.0, 0.3};
  return {rows({{1.0, 0.5, -0.3, 2.0, 0.0}, {-0.8, 0.3, 1.2, -1.5, 0.4}, {0.2, -1.0, 0.7, 0.9, -0.6}}),
          torch::randn({4, 9}, torch::kDouble),
          rows({g, g}),                                          // identical
          rows({g, {-0.5, 1.0, -2.0, -0.3}}),                    // opposite
          rows({{1.0, 0.5, -0.3, 2.0}, {0, 0, 0, 0}, {-0.8, 0.3, 1.2, -1.5}}),  // a zero gradient
          rows({g})};                                            // one task
}

}  // namespace

// Every gradient method, several steps (state moves on) on each problem: sum_t a_t g_t = d for the methods that
// define a_t; a residual orthogonal to every g_t for the least-squares ones. Never the old placeholder 1.0.
TEST(EffectiveWeights, CombinedGradientIsTheWeightedSumOfTaskGradients) {
  for (const Method& m : gradient_methods()) {
    for (const at::Tensor& G0 : problems()) {
      const int64_t T = G0.size(0);
      auto w = mtl_test::make_weighting(m.yaml, static_cast<size_t>(T));
      ASSERT_EQ(w->needs(), mtl::GradientKind::kSharedTaskGrads) << m.yaml;
      for (int64_t step = 0; step < 3; ++step) {
        at::Tensor G = G0 * (1.0 + 0.25 * static_cast<double>(step));
        std::vector<double> losses;
        for (int64_t t = 0; t < T; ++t) losses.push_back(0.6 + 0.3 * static_cast<double>(t) + 0.1 * step);
        w->loss_weights(losses, {step, 0});
        at::Tensor d = w->combine(G, losses, {step, 0});
        ASSERT_EQ(w->last_weights().size(), static_cast<size_t>(T)) << m.yaml;
        at::Tensor a = as_tensor(w->last_weights());
        EXPECT_TRUE(torch::isfinite(a).all().item<bool>()) << m.yaml;
        at::Tensor residual = d - a.unsqueeze(0).mm(G).squeeze(0);
        const double scale = std::max(1.0, G.abs().max().item<double>() * (1 + a.abs().sum().item<double>()));
        if (m.exact)
          EXPECT_LE(residual.abs().max().item<double>(), 1e-12 * scale) << m.yaml << " step " << step << "\n" << G;
        else
          EXPECT_LE(G.mv(residual).abs().max().item<double>(), 1e-10 * scale * scale) << m.yaml << " step " << step;
      }
    }
  }
}

// The effective weights the engine logs come through combine_for_step: absent tasks get 0, present tasks their
// coefficient on their own row.
TEST(EffectiveWeights, AbsentTasksGetZeroAndThePresentTheirCoefficients) {
  at::Tensor G = rows({{1, 0}, {5, 5}, {-1, 1}});
  std::vector<double> weights;
  auto w = mtl_test::make_weighting("{method: pcgrad, order: fixed}", 3);
  at::Tensor d = mtl::combine_for_step(*w, G, {1, 1, 1}, {true, false, true}, {}, weights);
  expect_tensor(d, {0.5, 1.5}, 1e-15, "pcgrad tasks 0 and 2");
  expect_weights(weights, {2.0, 0.0, 1.5}, 1e-15, "pcgrad tasks 0 and 2");  // the 2-task hand case above
}
