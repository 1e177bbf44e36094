#include "backbones/mlp.h"

#include "mtl/config/config_node.h"
#include "mtl/config/option_check.h"

namespace mtl {

MlpBackboneOptions MlpBackboneOptions::from_config(const ConfigNode& n, const DatasetSchema& schema) {
  const InputInfo& in = select_input(n, schema);
  int64_t features = 1;
  for (int64_t s : in.shape) features *= s;
  MlpBackboneOptions o(in.name, features);
  o.hidden(n.get<std::vector<int64_t>>("hidden", o.hidden()));
  o.activation(n.get<std::string>("activation", o.activation()));
  o.dropout(n.get<double>("dropout", o.dropout()));
  validate_config(n, [&] { o.validate(); });
  return o;
}

void MlpBackboneOptions::validate() const {
  for (int64_t h : hidden_) check(h > 0, "hidden", "expected positive layer widths");
  check_choice("activation", activation_, {"relu", "gelu", "tanh"});
  check(dropout_ >= 0 && dropout_ < 1, "dropout", "expected a value in [0, 1)");
  check(!input_.empty(), "input", "expected the name of the input to read");
  check(in_features_ > 0, "in_features", "expected a positive number, got " + std::to_string(in_features_));
}

MlpBackboneImpl::MlpBackboneImpl(MlpBackboneOptions options) : options_(std::move(options)) {
  validate_options("MlpBackboneOptions", [&] { options_.validate(); });
  layers_ = register_module("layers", MlpBlock(MlpBlockOptions(options_.in_features(), options_.hidden())
                                                   .activation(options_.activation())
                                                   .dropout(options_.dropout())
                                                   .index_stride(2)));
}

at::Tensor MlpBackboneImpl::forward(const TensorMap& inputs) {
  at::Tensor x = inputs.at(options_.input());
  return layers_->forward(x.reshape({x.size(0), -1}));
}

at::Tensor MlpBackboneImpl::stage(int64_t i, const TensorMap& inputs, const at::Tensor& x) {
  if (i > 0) return layers_->layer_forward(static_cast<size_t>(i), x);
  at::Tensor in = inputs.at(options_.input());
  return layers_->layer_forward(0, in.reshape({in.size(0), -1}));
}

std::vector<std::string> MlpBackboneImpl::block_names() const {
  std::vector<std::string> out;
  for (const auto& name : layers_->layer_names()) out.push_back("layers." + name);
  return out;
}

Backbone make_mlp_backbone(const ConfigNode& n, const DatasetSchema& schema) {
  return std::make_shared<MlpBackboneImpl>(MlpBackboneOptions::from_config(n, schema));
}

}  // namespace mtl
