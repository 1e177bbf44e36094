#include "heads/mlp_head.h"

#include "mtl/config/config_node.h"
#include "mtl/config/option_check.h"
#include "mtl/core/random.h"

namespace mtl {

MlpHeadOptions::MlpHeadOptions(int64_t in_features, int64_t out_features)
    : in_features_(in_features), out_features_(out_features) {}

MlpHeadOptions MlpHeadOptions::from_config(const ConfigNode& n, int64_t in_features, int64_t out_features) {
  MlpHeadOptions o(in_features, out_features);
  o.hidden(n.get<std::vector<int64_t>>("hidden", o.hidden()));
  o.dropout(n.get<double>("dropout", o.dropout()));
  o.activation(n.get<std::string>("activation", o.activation()));
  validate_config(n, [&] { o.validate(); });
  return o;
}

void MlpHeadOptions::validate() const {
  for (int64_t width : hidden_)
    check(width > 0, "hidden", "expected a list of positive layer widths, got " + std::to_string(width));
  check(dropout_ >= 0.0 && dropout_ < 1.0, "dropout",
        "expected a probability in [0, 1), got " + std::to_string(dropout_));
  check_choice("activation", activation_, {"relu", "gelu", "tanh"});
  check(in_features_ > 0, "in_features", "expected a positive number, got " + std::to_string(in_features_));
  check(out_features_ > 0, "out_features", "expected a positive number, got " + std::to_string(out_features_));
}

MlpHeadImpl::MlpHeadImpl(MlpHeadOptions options) : options_(std::move(options)) {
  validate_options("MlpHeadOptions", [&] { options_.validate(); });
  // Dropout on the block's input here, then after each of its activations: every Linear reads dropped-out
  // features. An empty block registers no parameters, so a head without hidden layers has only out.*.
  hidden_ = register_module("hidden", MlpBlock(MlpBlockOptions(options_.in_features(), options_.hidden())
                                                   .activation(options_.activation())
                                                   .dropout(options_.dropout())));
  out_ = register_module("out", torch::nn::Linear(hidden_->out_features(), options_.out_features()));
}

at::Tensor MlpHeadImpl::forward(const at::Tensor& features) {
  return out_->forward(hidden_->forward(mtl::dropout(features, options_.dropout(), is_training())));
}

}  // namespace mtl
