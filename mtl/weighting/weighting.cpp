#include "mtl/weighting/weighting.h"

#include "mtl/core/error.h"
#include "mtl/weighting/methods.h"

namespace mtl {

at::Tensor Weighting::combine(const at::Tensor& task_grads, const std::vector<double>& losses,
                              const StepContext& ctx) {
  TORCH_CHECK(false, "this weighting strategy does not combine gradients (needs() = kWeightedLoss)");
}

std::vector<double> read_state_vector(torch::serialize::InputArchive& archive, const std::string& key, int64_t size,
                                      const std::string& method) {
  at::Tensor v;
  archive.read(key, v);
  TORCH_CHECK(v.dim() == 1 && v.numel() == size, "checkpoint ", method, " state '", key, "' has ", v.numel(),
              " values, the config needs ", size);
  v = v.to(at::kDouble).contiguous();
  return std::vector<double>(v.data_ptr<double>(), v.data_ptr<double>() + v.numel());
}

void load_learned(torch::serialize::InputArchive& archive, const std::string& key, at::Tensor& param,
                  const std::string& method) {
  std::vector<double> v = read_state_vector(archive, key, param.numel(), method);
  at::NoGradGuard no_grad;
  param.copy_(at::tensor(v, at::kDouble).view(param.sizes()));
}

std::vector<double> Weighting::representation_weights(const at::Tensor&, const std::vector<double>&,
                                                      const StepContext&) {
  TORCH_CHECK(false, "this weighting strategy does not weight representation gradients");
}

}  // namespace mtl
