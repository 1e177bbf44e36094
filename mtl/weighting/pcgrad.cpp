#include "mtl/weighting/pcgrad.h"

#include <ATen/ATen.h>

#include "mtl/config/config_node.h"
#include "mtl/weighting/method_support.h"

namespace mtl {

PcGradOptions PcGradOptions::from_config(const ConfigNode& options) {
  std::string order = options.choice("order", std::string("random"), {"random", "fixed"});
  return PcGradOptions().order(order).seed(non_negative<int64_t>(options, "seed", 0));
}

bool check_task_order_options(const std::string& options, const std::string& order, int64_t seed) {
  check_option(order == "random" || order == "fixed", options, "order", got("expected 'random' or 'fixed'", order));
  check_option(seed >= 0, options, "seed", got("expected a number >= 0", static_cast<double>(seed)));
  return order == "random";
}

PcGrad::PcGrad(PcGradOptions options)
    : random_order_(check_task_order_options("PcGradOptions", options.order(), options.seed())),
      seed_(static_cast<uint64_t>(options.seed())) {}

at::Tensor PcGrad::combine(const at::Tensor& G, const std::vector<double>&, const StepContext& ctx) {
  const int64_t T = G.size(0);
  at::Tensor g = G.to(at::kDouble);
  at::Tensor sq = (g * g).sum(1);
  at::Tensor out = at::zeros({g.size(1)}, g.options());
  std::vector<double> a(static_cast<size_t>(T), 1.0);  // out = sum_t a_t g_t: each g_i' starts as 1 * g_i
  for (int64_t i = 0; i < T; ++i) {
    at::Tensor gi = g[i].clone();
    for (int64_t j : task_order(T, i, ctx.step, seed_, random_order_)) {
      if (j == i) continue;
      double d = gi.dot(g[j]).item<double>();
      double n = sq[j].item<double>();
      if (d < 0 && n > 0) {
        gi.sub_(g[j], d / n);
        a[j] -= d / n;
      }
    }
    out.add_(gi);
  }
  last_weights_ = a;
  return out.to(G.scalar_type());
}

}  // namespace mtl
