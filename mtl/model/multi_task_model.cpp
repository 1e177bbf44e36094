#include "mtl/model/multi_task_model.h"

namespace mtl {

MultiTaskModelImpl::MultiTaskModelImpl(Backbone backbone, std::vector<std::string> task_names,
                                       std::vector<Head> heads)
    : backbone_(std::move(backbone)), task_names_(std::move(task_names)), heads_(std::move(heads)) {
  TORCH_CHECK(task_names_.size() == heads_.size(), "one head per task");
  register_module("backbone", backbone_);
  std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>> named;
  for (size_t t = 0; t < heads_.size(); ++t) named.emplace_back(task_names_[t], heads_[t]);
  auto dict = torch::nn::ModuleDict(named);
  register_module("heads", dict);
}

ModelOutput MultiTaskModelImpl::forward(const TensorMap& inputs) {
  ModelOutput out;
  Features f = backbone_->encode(inputs);
  out.features = f.pooled;
  out.token_features = f.tokens;
  out.outputs = heads_forward(out.features, out.token_features);
  return out;
}

std::vector<at::Tensor> MultiTaskModelImpl::heads_forward(const at::Tensor& features,
                                                          const at::Tensor& token_features) {
  std::vector<at::Tensor> outputs;
  outputs.reserve(heads_.size());
  for (auto& h : heads_) {
    if (!h->token_level()) {
      outputs.push_back(h->forward(features));
    } else {
      outputs.push_back(token_features.defined() ? h->forward(token_features) : at::Tensor());
    }
  }
  return outputs;
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

std::vector<at::Tensor> MultiTaskModelImpl::shared_parameters() const { return trainable(*backbone_); }
std::vector<at::Tensor> MultiTaskModelImpl::head_parameters(size_t t) const { return trainable(*heads_[t]); }

}  // namespace mtl
