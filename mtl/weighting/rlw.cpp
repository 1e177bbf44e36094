#include "mtl/weighting/rlw.h"

#include <ATen/ATen.h>

#include "mtl/config/config_node.h"
#include "mtl/core/random.h"
#include "mtl/weighting/method_support.h"

namespace mtl {

RlwOptions RlwOptions::from_config(const ConfigNode& options) {
  return RlwOptions().seed(non_negative<int64_t>(options, "seed", 0));
}

Rlw::Rlw(int64_t tasks, RlwOptions options) : tasks_(tasks), seed_(static_cast<uint64_t>(options.seed())) {
  check_option(options.seed() >= 0, "RlwOptions", "seed", got("expected a number >= 0", options.seed()));
}

std::vector<double> Rlw::loss_weights(const std::vector<double>&, const StepContext& ctx) {
  at::Generator gen = make_generator(seed_, static_cast<uint64_t>(ctx.step), 0x524c57);  // "RLW"
  at::Tensor z = at::randn({tasks_}, gen, at::TensorOptions().dtype(at::kDouble));
  if (!ctx.tasks.empty()) z = z.index_select(0, at::tensor(ctx.tasks, at::kLong));  // present tasks only
  at::Tensor w = at::softmax(z, 0).contiguous();
  last_weights_.assign(w.data_ptr<double>(), w.data_ptr<double>() + w.numel());
  return last_weights_;
}

}  // namespace mtl
