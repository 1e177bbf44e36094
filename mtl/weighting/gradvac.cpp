#include "mtl/weighting/gradvac.h"

#include <ATen/ATen.h>
#include <torch/serialize/archive.h>

#include <cmath>

#include "mtl/config/config_node.h"
#include "mtl/weighting/method_support.h"
#include "mtl/weighting/pcgrad.h"

namespace mtl {

GradVacOptions GradVacOptions::from_config(const ConfigNode& options) {
  double beta = in_range<double>(options, "beta", 0.01, 0.0, 1.0);
  std::string order = options.choice("order", std::string("random"), {"random", "fixed"});
  return GradVacOptions().beta(beta).order(order).seed(non_negative<int64_t>(options, "seed", 0));
}

GradVac::GradVac(int64_t tasks, GradVacOptions options)
    : beta_(options.beta()), random_order_(check_task_order_options("GradVacOptions", options.order(), options.seed())),
      seed_(static_cast<uint64_t>(options.seed())), target_(at::zeros({tasks, tasks}, at::kDouble)) {
  check_option(beta_ >= 0 && beta_ <= 1, "GradVacOptions", "beta", got("expected a value in [0, 1]", beta_));
}

at::Tensor GradVac::combine(const at::Tensor& G, const std::vector<double>&, const StepContext& ctx) {
  const int64_t T = G.size(0);
  at::Tensor g = G.to(at::kDouble);
  at::Tensor norms = g.norm(2, 1);
  at::Tensor out = at::zeros({g.size(1)}, g.options());
  std::vector<double> a(static_cast<size_t>(T), 1.0);  // out = sum_t a_t g_t: each g_i' starts as 1 * g_i
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
        a[j] += w;
      }
      phi[ti][tj] = (1 - beta_) * target + beta_ * c;
    }
    out.add_(gi);
  }
  last_weights_ = a;
  return out.to(G.scalar_type());
}

void GradVac::save(torch::serialize::OutputArchive& a) const { a.write("target_similarity", target_); }

void GradVac::load(torch::serialize::InputArchive& a) {
  at::Tensor t;
  a.read("target_similarity", t);
  TORCH_CHECK(t.sizes() == target_.sizes(), "checkpoint GradVac state has the wrong shape");
  target_.copy_(t);
}

}  // namespace mtl
