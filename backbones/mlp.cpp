#include "backbones/mlp.h"

#include "mtl/config/config_node.h"
#include "mtl/core/random.h"

namespace mtl {

void append_activation(torch::nn::Sequential& seq, const std::string& name) {
  if (name == "relu")
    seq->push_back(torch::nn::ReLU());
  else if (name == "gelu")
    seq->push_back(torch::nn::GELU());
  else
    seq->push_back(torch::nn::Tanh());
}

MlpBackboneImpl::MlpBackboneImpl(const MlpOptions& options, int64_t in_features) : options_(options) {
  layers_ = torch::nn::Sequential();
  int64_t d = in_features;
  for (int64_t h : options.hidden) {
    layers_->push_back(torch::nn::Linear(d, h));
    append_activation(layers_, options.activation);
    d = h;
  }
  out_dim_ = d;
  register_module("layers", layers_);
}

at::Tensor MlpBackboneImpl::forward(const TensorMap& inputs) {
  at::Tensor x = inputs.at(options_.input);
  x = x.reshape({x.size(0), -1});
  // Dropout after each activation, from the thread's random stream (see mtl/core/random.h).
  for (auto& layer : *layers_) {
    x = layer.forward(x);
    if (options_.dropout > 0 && !layer.ptr()->as<torch::nn::LinearImpl>())
      x = mtl::dropout(x, options_.dropout, is_training());
  }
  return x;
}

std::vector<std::string> MlpBackboneImpl::block_names() const {
  std::vector<std::string> out;
  for (size_t i = 0; i < layers_->size(); ++i)
    if (layers_->ptr(i)->as<torch::nn::LinearImpl>()) out.push_back("layers." + std::to_string(i));
  return out;
}

Backbone make_mlp_backbone(const ConfigNode& n, const DatasetSchema& schema) {
  MlpOptions o;
  const InputInfo& in = select_input(n, schema);
  o.input = in.name;
  o.hidden = n.get<std::vector<int64_t>>("hidden", o.hidden);
  for (int64_t h : o.hidden) n.check(h > 0, "hidden", "expected positive layer widths");
  o.activation = n.choice("activation", o.activation, {"relu", "gelu", "tanh"});
  o.dropout = n.get<double>("dropout", o.dropout);
  n.check(o.dropout >= 0 && o.dropout < 1, "dropout", "expected a value in [0, 1)");
  int64_t features = 1;
  for (int64_t s : in.shape) features *= s;
  return std::make_shared<MlpBackboneImpl>(o, features);
}

}  // namespace mtl
