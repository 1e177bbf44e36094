#include "backbones/multimodal.h"

#include <torch/nn/modules/linear.h>

#include "mtl/config/config_node.h"
#include "mtl/config/option_check.h"

namespace mtl {

MultimodalBackboneOptions MultimodalBackboneOptions::from_config(const ConfigNode& n) {
  MultimodalBackboneOptions o;
  o.dim(n.get<int64_t>("dim", o.dim()));
  o.fusion(n.get<std::string>("fusion", o.fusion()));
  o.trunk(n.get<std::vector<int64_t>>("trunk", o.trunk()));
  o.activation(n.get<std::string>("activation", o.activation()));
  o.dropout(n.get<double>("dropout", o.dropout()));
  validate_config(n, [&] { o.validate(); });
  return o;
}

void MultimodalBackboneOptions::validate() const {
  check(dim_ > 0, "dim", "expected a positive number, got " + std::to_string(dim_));
  check_choice("fusion", fusion_, {"sum", "concat"});
  for (int64_t h : trunk_) check(h > 0, "trunk", "expected positive layer widths");
  check_choice("activation", activation_, {"relu", "gelu", "tanh"});
  check(dropout_ >= 0 && dropout_ < 1, "dropout", "expected a value in [0, 1)");
}

MultimodalBackboneImpl::MultimodalBackboneImpl(MultimodalBackboneOptions options, std::vector<std::string> inputs,
                                               std::vector<Backbone> stems)
    : options_(std::move(options)), inputs_(std::move(inputs)), stems_(std::move(stems)) {
  validate_options("MultimodalBackboneOptions", [&] {
    options_.validate();
    check(!stems_.empty() && stems_.size() == inputs_.size(), "stems",
          "expected one stem per input name, got " + std::to_string(stems_.size()) + " stems for " +
              std::to_string(inputs_.size()) + " inputs");
  });
  projections_ = torch::nn::ModuleList();
  for (size_t s = 0; s < stems_.size(); ++s) {
    register_module("stem_" + inputs_[s], stems_[s]);
    projections_->push_back(torch::nn::Linear(stems_[s]->output_dim(), options_.dim()));
  }
  register_module("projections", projections_);
  const int64_t fused = options_.fusion() == "concat" ? options_.dim() * static_cast<int64_t>(stems_.size()) : options_.dim();
  trunk_ = register_module("trunk", MlpBlock(MlpBlockOptions(fused, options_.trunk())
                                                 .activation(options_.activation())
                                                 .dropout(options_.dropout())
                                                 .index_stride(2)));
  out_dim_ = trunk_->out_features();
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
  if (options_.fusion() == "concat") {
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
  return trunk_->forward(x);
}

std::vector<std::string> MultimodalBackboneImpl::block_names() const {
  std::vector<std::string> out;
  for (const auto& in : inputs_) out.push_back("stem_" + in);
  out.push_back("projections");
  if (!options_.trunk().empty()) out.push_back("trunk");
  return out;
}

Backbone make_multimodal_backbone(const ConfigNode& n, const DatasetSchema& schema) {
  MultimodalBackboneOptions o = MultimodalBackboneOptions::from_config(n);
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
  return std::make_shared<MultimodalBackboneImpl>(std::move(o), names, built);
}

}  // namespace mtl
