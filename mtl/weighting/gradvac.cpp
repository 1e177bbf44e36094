// GradVac, gradient vaccine (Wang et al., 2021): like PCGrad, but each task pair has a target cosine
// similarity phi_ij, an exponential moving average (rate beta) of the similarities seen so far. When
// cos(g_i', g_j) < phi_ij, g_i' is moved towards g_j until the cosine equals the target:
//   g_i' += g_j |g_i'| (phi_ij sqrt(1 - c^2) - c sqrt(1 - phi_ij^2)) / (|g_j| sqrt(1 - phi_ij^2)),
// then phi_ij <- (1 - beta) phi_ij + beta c (every step, as in the paper). The shared gradient is sum_i g_i'.
// The targets start at 0 (PCGrad's) and are checkpoint state. Task order as in PCGrad.
//   weighting: {method: gradvac, beta: 0.01, order: random, seed: 0}
#include <cmath>

#include <torch/serialize/archive.h>

#include "mtl/config/config_node.h"
#include "mtl/weighting/gradient_method.h"
#include "mtl/weighting/methods.h"

namespace mtl {

namespace {
class GradVacWeighting : public GradientWeighting {
 public:
  GradVacWeighting(size_t tasks, double beta, bool random_order, uint64_t seed)
      : beta_(beta), random_order_(random_order), seed_(seed),
        target_(at::zeros({static_cast<int64_t>(tasks), static_cast<int64_t>(tasks)}, at::kDouble)) {}

  at::Tensor combine(const at::Tensor& G, const std::vector<double>&, const StepContext& ctx) override {
    const int64_t T = G.size(0);
    at::Tensor g = G.to(at::kDouble);
    at::Tensor norms = g.norm(2, 1);
    at::Tensor out = at::zeros({g.size(1)}, g.options());
    auto phi = target_.accessor<double, 2>();
    for (int64_t i = 0; i < T; ++i) {
      at::Tensor gi = g[i].clone();
      for (int64_t j : task_order(T, i, ctx.step, seed_, random_order_)) {
        if (j == i) continue;
        double ni = gi.norm().item<double>(), nj = norms[j].item<double>();
        if (ni == 0 || nj == 0) continue;
        double c = gi.dot(g[j]).item<double>() / (ni * nj);
        const int64_t ti = ctx.task(i), tj = ctx.task(j);  // state is kept per pair of the run's tasks
        double target = phi[ti][tj];
        if (c < target) {
          double w = ni * (target * std::sqrt(std::max(0.0, 1 - c * c)) - c * std::sqrt(std::max(0.0, 1 - target * target))) /
                     (nj * std::sqrt(std::max(1e-12, 1 - target * target)));
          gi.add_(g[j], w);
        }
        phi[ti][tj] = (1 - beta_) * target + beta_ * c;
      }
      out.add_(gi);
    }
    last_weights_.assign(T, 1.0);
    return out.to(G.scalar_type());
  }
  void save(torch::serialize::OutputArchive& a) const override { a.write("target_similarity", target_); }
  void load(torch::serialize::InputArchive& a) override {
    at::Tensor t;
    a.read("target_similarity", t);
    TORCH_CHECK(t.sizes() == target_.sizes(), "checkpoint GradVac state has the wrong shape");
    target_.copy_(t);
  }

 private:
  double beta_;
  bool random_order_;
  uint64_t seed_;
  at::Tensor target_;  // [T, T] target cosine similarities
};
}  // namespace

std::unique_ptr<Weighting> make_gradvac_weighting(const ConfigNode& options, const WeightingContext& ctx) {
  double beta = in_range<double>(options, "beta", 0.01, 0.0, 1.0);
  bool random = options.choice("order", std::string("random"), {"random", "fixed"}) == "random";
  int64_t seed = non_negative<int64_t>(options, "seed", 0);
  return std::make_unique<GradVacWeighting>(ctx.task_names.size(), beta, random, static_cast<uint64_t>(seed));
}

}  // namespace mtl
