// RLW, random loss weighting (Lin et al., 2022): each step draws z ~ N(0, I_T) and uses w = softmax(z).
// The draw depends only on (seed, step), so every thread count (and a resumed run) sees the same weights.
//   weighting: {method: rlw, seed: 0}
#include <cmath>

#include "mtl/config/config_node.h"
#include "mtl/core/random.h"
#include "mtl/weighting/methods.h"

namespace mtl {

namespace {
class RlwWeighting : public Weighting {
 public:
  RlwWeighting(size_t tasks, uint64_t seed) : tasks_(tasks), seed_(seed) {}

  std::vector<double> loss_weights(const std::vector<double>&, const StepContext& ctx) override {
    at::Generator gen = make_generator(seed_, static_cast<uint64_t>(ctx.step), 0x524c57);  // "RLW"
    at::Tensor z = at::randn({static_cast<int64_t>(tasks_)}, gen, at::TensorOptions().dtype(at::kDouble));
    if (!ctx.tasks.empty()) z = z.index_select(0, at::tensor(ctx.tasks, at::kLong));  // present tasks only
    at::Tensor w = at::softmax(z, 0).contiguous();
    std::vector<double> out(w.data_ptr<double>(), w.data_ptr<double>() + w.numel());
    last_weights_ = out;
    return out;
  }
  bool weights_ignore_step_losses() const override { return true; }

 private:
  size_t tasks_;
  uint64_t seed_;
};
}  // namespace

std::unique_ptr<Weighting> make_rlw_weighting(const ConfigNode& options, const WeightingContext& ctx) {
  int64_t seed = non_negative<int64_t>(options, "seed", 0);
  return std::make_unique<RlwWeighting>(ctx.task_names.size(), static_cast<uint64_t>(seed));
}

}  // namespace mtl
