// GradDrop, gradient sign dropout (Chen et al., 2020): per coordinate, the sign purity
// P = (1 + sum_t g_t / sum_t |g_t|) / 2 and a uniform draw U decide which sign survives: task t keeps its
// component where (P > U and g_t > 0) or (P < U and g_t < 0); the result is the sum of the kept components
// (with `leak` l, a dropped component still contributes l times itself). The paper applies it to the
// gradient of a shared activation; here it applies to the shared parameters' gradients. U is drawn from
// (seed, step): the same for any thread count.
//   weighting: {method: graddrop, leak: 0.0, seed: 0}
#include "mtl/config/config_node.h"
#include "mtl/core/random.h"
#include "mtl/weighting/gradient_method.h"
#include "mtl/weighting/methods.h"

namespace mtl {

at::Tensor graddrop_combine(const at::Tensor& G, const at::Tensor& U, double leak) {
  at::Tensor g = G.to(at::kDouble);
  at::Tensor abs_sum = g.abs().sum(0);
  at::Tensor P = at::where(abs_sum > 0, 0.5 * (1 + g.sum(0) / abs_sum.clamp_min(1e-300)),
                           at::full_like(abs_sum, 0.5));
  at::Tensor keep = ((P > U).unsqueeze(0) & (g > 0)) | ((P < U).unsqueeze(0) & (g < 0));
  at::Tensor mask = leak + (1 - leak) * keep.to(at::kDouble);
  return (mask * g).sum(0).to(G.scalar_type());
}

namespace {
class GradDropWeighting : public GradientWeighting {
 public:
  GradDropWeighting(double leak, uint64_t seed) : leak_(leak), seed_(seed) {}

  at::Tensor combine(const at::Tensor& G, const std::vector<double>&, const StepContext& ctx) override {
    at::Generator gen = make_generator(seed_, static_cast<uint64_t>(ctx.step), 0x4744);  // "GD"
    at::Tensor U = at::rand({G.size(1)}, gen, at::TensorOptions().dtype(at::kDouble));
    last_weights_.assign(G.size(0), 1.0);
    return graddrop_combine(G, U, leak_);
  }

 private:
  double leak_;
  uint64_t seed_;
};
}  // namespace

std::unique_ptr<Weighting> make_graddrop_weighting(const ConfigNode& options, const WeightingContext&) {
  double leak = in_range<double>(options, "leak", 0.0, 0.0, 1.0);
  int64_t seed = non_negative<int64_t>(options, "seed", 0);
  return std::make_unique<GradDropWeighting>(leak, static_cast<uint64_t>(seed));
}

}  // namespace mtl
