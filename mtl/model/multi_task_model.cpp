#include "mtl/model/multi_task_model.h"

namespace mtl {

MultiTaskModelImpl::MultiTaskModelImpl(Backbone backbone, std::vector<std::string> task_names,
                                       std::vector<Head> heads)
    : MultiTaskModelImpl(std::make_shared<HpsArchitecture>(backbone, heads.size()), task_names, heads) {}

MultiTaskModelImpl::MultiTaskModelImpl(ArchitecturePtr architecture, std::vector<std::string> task_names,
                                       std::vector<Head> heads)
    : architecture_(std::move(architecture)), task_names_(std::move(task_names)), heads_(std::move(heads)) {
  TORCH_CHECK(task_names_.size() == heads_.size(), "one head per task");
  TORCH_CHECK(architecture_, "a model needs an architecture");
  if (auto* hps = dynamic_cast<HpsArchitecture*>(architecture_.get())) backbone_ = hps->backbone();
  for (auto& [name, module] : architecture_->modules()) register_module(name, module);
  std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>> named;
  for (size_t t = 0; t < heads_.size(); ++t) named.emplace_back(task_names_[t], heads_[t]);
  auto dict = torch::nn::ModuleDict(named);
  register_module("heads", dict);
}

ModelOutput MultiTaskModelImpl::forward(const TensorMap& inputs) {
  TrunkOutput trunk = architecture_->forward(inputs);
  ModelOutput out;
  out.outputs.reserve(heads_.size());
  for (size_t t = 0; t < heads_.size(); ++t) out.outputs.push_back(head_output(t, trunk));
  out.features = trunk.shared;
  out.token_features = trunk.tokens;
  out.gates = std::move(trunk.gates);
  out.regularizers = std::move(trunk.regularizers);
  return out;
}

TrunkOutput MultiTaskModelImpl::trunk(const TensorMap& inputs) { return architecture_->forward(inputs); }

at::Tensor MultiTaskModelImpl::head_output(size_t t, const TrunkOutput& trunk) {
  if (heads_[t]->dense()) {
    TORCH_CHECK(t < trunk.maps.size(), "task ", task_names_[t], ": the architecture gives no feature maps");
    return heads_[t]->forward_maps(trunk.maps[t]);
  }
  if (!heads_[t]->token_level()) return heads_[t]->forward(trunk.task[t]);
  return trunk.tokens.defined() ? heads_[t]->forward(trunk.tokens) : at::Tensor();
}

namespace {
std::vector<at::Tensor> trainable(const torch::nn::Module& m) {
  std::vector<at::Tensor> out;
  for (const auto& p : m.parameters())
    if (p.requires_grad()) out.push_back(p);
  return out;
}
}  // namespace

void MultiTaskModelImpl::train(bool on) {
  torch::nn::Module::train(on);
  for (auto& m : frozen_norms_) m->train(false);
}

void MultiTaskModelImpl::set_frozen_norm_modules(std::vector<std::string> names) {
  auto all = named_modules("", /*include_self=*/false);
  frozen_norms_.clear();
  for (const auto& n : names) {
    TORCH_CHECK(all.contains(n), "no module named ", n);
    frozen_norms_.push_back(all[n]);
  }
  frozen_norm_names_ = std::move(names);
  train(is_training());
}

std::unordered_set<const void*> MultiTaskModelImpl::task_parameter_set() const {
  std::unordered_set<const void*> out;
  for (size_t t = 0; t < heads_.size(); ++t)
    for (const auto& q : architecture_->task_parameters(t)) out.insert(q.unsafeGetTensorImpl());
  return out;
}

std::vector<at::Tensor> MultiTaskModelImpl::shared_parameters() const {
  const auto owned = task_parameter_set();
  std::vector<at::Tensor> out;
  for (const auto& [name, module] : architecture_->modules())
    for (const auto& p : module->parameters())
      if (p.requires_grad() && !owned.count(p.unsafeGetTensorImpl())) out.push_back(p);
  return out;
}

std::vector<std::string> MultiTaskModelImpl::shared_parameter_names() const {
  const auto owned = task_parameter_set();
  std::vector<std::string> out;
  for (const auto& [name, module] : architecture_->modules())
    for (const auto& kv : module->named_parameters())
      if (!owned.count(kv.value().unsafeGetTensorImpl())) out.push_back(name + "." + kv.key());
  return out;
}

std::vector<at::Tensor> MultiTaskModelImpl::head_parameters(size_t t) const {
  std::vector<at::Tensor> out = trainable(*heads_[t]);
  for (const auto& p : architecture_->task_parameters(t))
    if (p.requires_grad()) out.push_back(p);
  return out;
}

}  // namespace mtl
