#include "mtl/weighting/weighting.h"

#include "mtl/core/error.h"

namespace mtl {

at::Tensor Weighting::combine(const at::Tensor& task_grads, const std::vector<double>& losses,
                              const StepContext& ctx) {
  TORCH_CHECK(false, "this weighting strategy does not combine gradients (needs() = kWeightedLoss)");
}

}  // namespace mtl
