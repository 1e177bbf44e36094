#include "backbones/multimodal.h"

#include <torch/nn/modules/linear.h>

#include "backbones/mlp.h"
#include "mtl/config/config_node.h"

namespace mtl {

MultimodalBackboneImpl::MultimodalBackboneImpl(const MultimodalOptions& options, std::vector<std::string> inputs,
                                               std::vector<Backbone> stems)
    : options_(options), inputs_(std::move(inputs)), stems_(std::move(stems)) {
  projections_ = torch::nn::ModuleList();
  for (size_t s = 0; s < stems_.size(); ++s) {
    register_module("stem_" + inputs_[s], stems_[s]);
    projections_->push_back(torch::nn::Linear(stems_[s]->output_dim(), options_.dim));
  }
  register_module("projections", projections_);
  const int64_t fused = options_.fusion == "concat" ? options_.dim * static_cast<int64_t>(stems_.size()) : options_.dim;
  trunk_ = make_mlp_layers(fused, options_.trunk, options_.activation, out_dim_);
  register_module("trunk", trunk_);
}

at::Tensor MultimodalBackboneImpl::forward(const TensorMap& inputs) {
  std::vector<at::Tensor> parts(stems_.size());
  int64_t batch = -1;
  for (size_t s = 0; s < stems_.size(); ++s) {
    if (!inputs.count(inputs_[s])) continue;
    parts[s] = projections_[s]->as<torch::nn::LinearImpl>()->forward(stems_[s]->forward(inputs));
    batch = parts[s].size(0);
  }
  TORCH_CHECK(batch >= 0, "multimodal backbone: the batch has none of the stems' inputs");
  at::Tensor x;
  if (options_.fusion == "concat") {
    for (size_t s = 0; s < stems_.size(); ++s) {
      at::Tensor p = parts[s];
      for (size_t k = 0; !p.defined() && k < stems_.size(); ++k)
        if (parts[k].defined()) p = at::zeros_like(parts[k]);
      parts[s] = p;
    }
    x = at::cat(parts, 1);
  } else {
    for (const auto& p : parts)
      if (p.defined()) x = x.defined() ? x + p : p;
  }
  return run_mlp_layers(trunk_, x, options_.dropout, is_training());
}

std::vector<std::string> MultimodalBackboneImpl::block_names() const {
  std::vector<std::string> out;
  for (const auto& in : inputs_) out.push_back("stem_" + in);
  out.push_back("projections");
  if (!options_.trunk.empty()) out.push_back("trunk");
  return out;
}

Backbone make_multimodal_backbone(const ConfigNode& n, const DatasetSchema& schema) {
  MultimodalOptions o;
  o.dim = positive<int64_t>(n, "dim", o.dim);
  o.fusion = n.choice("fusion", o.fusion, {"sum", "concat"});
  o.trunk = n.get<std::vector<int64_t>>("trunk", o.trunk);
  for (int64_t h : o.trunk) n.check(h > 0, "trunk", "expected positive layer widths");
  o.activation = n.choice("activation", o.activation, {"relu", "gelu", "tanh"});
  o.dropout = n.get<double>("dropout", o.dropout);
  n.check(o.dropout >= 0 && o.dropout < 1, "dropout", "expected a value in [0, 1)");
  std::vector<std::string> names = n.keys("stems");
  std::vector<std::string> available;
  for (const auto& i : schema.inputs) available.push_back(i.name);
  if (names.empty())
    n.fail("stems", "expected one stem per input, e.g. stems: {image: {type: lenet}, text: {type: transformer}}; "
                    "the data has inputs: " + join(available));
  ConfigNode stems = n.child("stems");
  std::vector<Backbone> built;
  for (const auto& name : names) {
    const InputInfo* in = schema.input(name);
    if (!in)
      stems.fail(name, "the data has no input '" + name + "'" + did_you_mean(name, available) + "; it has: " +
                           join(available));
    ConfigNode s = stems.component(name);
    DatasetSchema only;  // the stem sees just its input
    only.inputs.push_back(*in);
    only.labels = schema.labels;
    built.push_back(backbone_registry().get(s.type(), s.where("type"))(s, only));
  }
  for (const auto& a : available)
    if (std::find(names.begin(), names.end(), a) == names.end())
      n.fail("stems", "input '" + a + "' has no stem; every input needs one (stems: {" + a + ": {type: ...}})");
  return std::make_shared<MultimodalBackboneImpl>(o, names, built);
}

}  // namespace mtl
