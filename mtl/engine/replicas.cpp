#include "mtl/engine/replicas.h"

#include <torch/nn/module.h>

#include "mtl/engine/reducer.h"

namespace mtl {

std::vector<at::Tensor> trainable_parameters(const MultiTaskModelImpl& model) {
  std::vector<at::Tensor> out;
  for (const auto& p : model.parameters())
    if (p.requires_grad()) out.push_back(p);
  return out;
}

std::unordered_map<const void*, size_t> parameter_positions(const std::vector<at::Tensor>& params) {
  std::unordered_map<const void*, size_t> out;
  for (size_t k = 0; k < params.size(); ++k) out[params[k].unsafeGetTensorImpl()] = k;
  return out;
}

void alias_parameters(const MultiTaskModel& model, MultiTaskModel& replica) {
  torch::NoGradGuard no_grad;
  auto mine = model->named_parameters();
  for (auto& kv : replica->named_parameters()) {
    kv.value().set_data(mine[kv.key()]);
    kv.value().set_requires_grad(mine[kv.key()].requires_grad());
  }
  auto bufs = model->named_buffers();
  for (auto& kv : replica->named_buffers()) kv.value().copy_(bufs[kv.key()]);
  replica->set_frozen_norm_modules(model->frozen_norm_modules());  // frozen BatchNorm stays in eval mode
}

void average_replica_buffers(MultiTaskModel& model, const std::vector<MultiTaskModel>& replicas,
                             GradientReducer& reducer) {
  torch::NoGradGuard no_grad;
  auto target = model->named_buffers();
  if (target.is_empty()) return;
  std::vector<torch::OrderedDict<std::string, at::Tensor>> reps;
  for (const auto& r : replicas) reps.push_back(r->named_buffers());
  for (auto& kv : target) {
    if (reps.empty()) break;
    at::Tensor& b = kv.value();
    if (at::isFloatingType(b.scalar_type())) {
      at::Tensor acc = at::zeros_like(b, at::kDouble);
      for (auto& r : reps) acc += r[kv.key()].to(at::kDouble);
      b.copy_(acc / double(reps.size()));
    } else {
      b.copy_(reps[0][kv.key()]);  // counters (num_batches_tracked) agree
    }
  }
  std::vector<at::Tensor> buffers;
  for (auto& kv : target) buffers.push_back(kv.value());
  reducer.reduce_buffers(buffers);
  for (auto& kv : target)
    for (auto& r : reps) r[kv.key()].copy_(kv.value());
}

}  // namespace mtl
