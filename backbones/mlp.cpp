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

torch::nn::Sequential make_mlp_layers(int64_t in_features, const std::vector<int64_t>& hidden,
                                      const std::string& activation, int64_t& out_dim) {
  torch::nn::Sequential layers;
  int64_t d = in_features;
  for (int64_t h : hidden) {
    layers->push_back(torch::nn::Linear(d, h));
    append_activation(layers, activation);
    d = h;
  }
  out_dim = d;
  return layers;
}

at::Tensor run_mlp_layers(torch::nn::Sequential& layers, at::Tensor x, double dropout, bool training) {
  for (auto& layer : *layers) {
    x = layer.forward(x);
    if (dropout > 0 && !layer.ptr()->as<torch::nn::LinearImpl>()) x = mtl::dropout(x, dropout, training);
  }
  return x;
}

MlpBackboneImpl::MlpBackboneImpl(const MlpOptions& options, int64_t in_features) : options_(options) {
  layers_ = make_mlp_layers(in_features, options.hidden, options.activation, out_dim_);
  register_module("layers", layers_);
}

at::Tensor MlpBackboneImpl::forward(const TensorMap& inputs) {
  at::Tensor x = inputs.at(options_.input);
  return run_mlp_layers(layers_, x.reshape({x.size(0), -1}), options_.dropout, is_training());
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
