#include "mtl/weighting/graddrop.h"

#include <ATen/ATen.h>

#include "mtl/config/config_node.h"
#include "mtl/core/random.h"
#include "mtl/weighting/method_support.h"

namespace mtl {

GradDropOptions GradDropOptions::from_config(const ConfigNode& options) {
  double leak = in_range<double>(options, "leak", 0.0, 0.0, 1.0);
  return GradDropOptions().leak(leak).seed(non_negative<int64_t>(options, "seed", 0));
}

GradDrop::GradDrop(GradDropOptions options) : leak_(options.leak()), seed_(static_cast<uint64_t>(options.seed())) {
  check_option(leak_ >= 0 && leak_ <= 1, "GradDropOptions", "leak", got("expected a value in [0, 1]", leak_));
  check_option(options.seed() >= 0, "GradDropOptions", "seed", got("expected a number >= 0", options.seed()));
}

at::Tensor graddrop_combine(const at::Tensor& G, const at::Tensor& U, double leak) {
  at::Tensor g = G.to(at::kDouble);
  at::Tensor abs_sum = g.abs().sum(0);
  at::Tensor P = at::where(abs_sum > 0, 0.5 * (1 + g.sum(0) / abs_sum.clamp_min(1e-300)),
                           at::full_like(abs_sum, 0.5));
  at::Tensor keep = ((P > U).unsqueeze(0) & (g > 0)) | ((P < U).unsqueeze(0) & (g < 0));
  at::Tensor mask = leak + (1 - leak) * keep.to(at::kDouble);
  return (mask * g).sum(0).to(G.scalar_type());
}

at::Tensor GradDrop::combine(const at::Tensor& G, const std::vector<double>&, const StepContext& ctx) {
  at::Generator gen = make_generator(seed_, static_cast<uint64_t>(ctx.step), 0x4744);  // "GD"
  at::Tensor U = at::rand({G.size(1)}, gen, at::TensorOptions().dtype(at::kDouble));
  at::Tensor d = graddrop_combine(G.to(at::kDouble), U, leak_);
  set_last_weights(least_squares_weights(G, d));
  return d.to(G.scalar_type());
}

}  // namespace mtl
