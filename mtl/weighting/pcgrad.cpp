// PCGrad (Yu et al., 2020): each task gradient g_i is projected, task by task in a random order, onto the
// normal plane of every other task's gradient g_j it conflicts with (g_i . g_j < 0):
//   g_i <- g_i - (g_i . g_j) / |g_j|^2 g_j;   the shared gradient is sum_i g_i.
// The order is drawn from (seed, step), so it is the same for any thread count; `order: fixed` uses the
// task order (deterministic, for comparisons).
//   weighting: {method: pcgrad, order: random, seed: 0}
#include "mtl/config/config_node.h"
#include "mtl/weighting/gradient_method.h"
#include "mtl/weighting/methods.h"

namespace mtl {

namespace {
class PcGradWeighting : public GradientWeighting {
 public:
  PcGradWeighting(bool random_order, uint64_t seed) : random_order_(random_order), seed_(seed) {}

  at::Tensor combine(const at::Tensor& G, const std::vector<double>&, const StepContext& ctx) override {
    const int64_t T = G.size(0);
    at::Tensor g = G.to(at::kDouble);
    at::Tensor sq = (g * g).sum(1);
    at::Tensor out = at::zeros({g.size(1)}, g.options());
    for (int64_t i = 0; i < T; ++i) {
      at::Tensor gi = g[i].clone();
      for (int64_t j : task_order(T, i, ctx.step, seed_, random_order_)) {
        if (j == i) continue;
        double d = gi.dot(g[j]).item<double>();
        double n = sq[j].item<double>();
        if (d < 0 && n > 0) gi.sub_(g[j], d / n);
      }
      out.add_(gi);
    }
    last_weights_.assign(T, 1.0);
    return out.to(G.scalar_type());
  }

 private:
  bool random_order_;
  uint64_t seed_;
};
}  // namespace

std::unique_ptr<Weighting> make_pcgrad_weighting(const ConfigNode& options, const WeightingContext&) {
  bool random = options.choice("order", std::string("random"), {"random", "fixed"}) == "random";
  int64_t seed = non_negative<int64_t>(options, "seed", 0);
  return std::make_unique<PcGradWeighting>(random, static_cast<uint64_t>(seed));
}

}  // namespace mtl
