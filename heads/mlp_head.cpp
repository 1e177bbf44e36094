#include "heads/mlp_head.h"

#include "mtl/core/random.h"

#include "mtl/config/config_node.h"

namespace mtl {

MlpHeadOptions MlpHeadOptions::from_config(const ConfigNode& n) {
  MlpHeadOptions o;
  o.hidden = n.get<std::vector<int64_t>>("hidden", o.hidden);
  for (int64_t width : o.hidden)
    n.check(width > 0, "hidden", "expected a list of positive layer widths, got " + std::to_string(width));
  o.dropout = n.get<double>("dropout", o.dropout);
  n.check(o.dropout >= 0.0 && o.dropout < 1.0, "dropout",
          "expected a probability in [0, 1), got " + std::to_string(o.dropout));
  o.activation = n.choice("activation", o.activation, {"relu", "gelu", "tanh"});
  return o;
}

MlpHeadImpl::MlpHeadImpl(int64_t in_features, int64_t out_features, MlpHeadOptions options)
    : options_(std::move(options)), out_features_(out_features) {
  TORCH_CHECK(in_features > 0 && out_features > 0, "MlpHead: in_features (", in_features,
              ") and out_features (", out_features, ") must be positive");
  int64_t width = in_features;
  for (int64_t h : options_.hidden) {
    hidden_->push_back(torch::nn::Linear(width, h));
    width = h;
  }
  // The empty ModuleList registers no parameters, so a head without hidden layers has only out.*.
  register_module("hidden", hidden_);
  out_ = register_module("out", torch::nn::Linear(width, out_features));
}

at::Tensor MlpHeadImpl::forward(const at::Tensor& features) {
  const double p = options_.dropout;
  at::Tensor x = features;
  for (const auto& layer : *hidden_) {
    if (p > 0) x = mtl::dropout(x, p, is_training());
    x = layer->as<torch::nn::LinearImpl>()->forward(x);
    if (options_.activation == "relu")
      x = torch::relu(x);
    else if (options_.activation == "gelu")
      x = torch::gelu(x);
    else
      x = torch::tanh(x);
  }
  if (p > 0) x = mtl::dropout(x, p, is_training());
  return out_->forward(x);
}

}  // namespace mtl
