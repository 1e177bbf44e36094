#include "heads/mlp_block.h"

#include "mtl/config/option_check.h"
#include "mtl/core/random.h"

namespace mtl {

MlpBlockOptions::MlpBlockOptions(int64_t in_features, std::vector<int64_t> hidden)
    : in_features_(in_features), hidden_(std::move(hidden)) {}

void MlpBlockOptions::validate() const {
  check(in_features_ > 0, "in_features", "expected a positive number, got " + std::to_string(in_features_));
  for (int64_t width : hidden_)
    check(width > 0, "hidden", "expected a list of positive layer widths, got " + std::to_string(width));
  check_choice("activation", activation_, {"relu", "gelu", "tanh"});
  check(dropout_ >= 0.0 && dropout_ < 1.0, "dropout",
        "expected a probability in [0, 1), got " + std::to_string(dropout_));
  check(index_stride_ > 0, "index_stride", "expected a positive number, got " + std::to_string(index_stride_));
}

at::Tensor activate(const at::Tensor& x, const std::string& activation) {
  if (activation == "relu") return torch::relu(x);
  if (activation == "gelu") return torch::gelu(x);
  return torch::tanh(x);
}

MlpBlockImpl::MlpBlockImpl(MlpBlockOptions options) : options_(std::move(options)) {
  validate_options("MlpBlockOptions", [&] { options_.validate(); });
  int64_t width = options_.in_features();
  const auto& hidden = options_.hidden();
  for (size_t k = 0; k < hidden.size(); ++k) {
    layers_.push_back(register_module(std::to_string(static_cast<int64_t>(k) * options_.index_stride()),
                                      torch::nn::Linear(width, hidden[k])));
    width = hidden[k];
  }
}

at::Tensor MlpBlockImpl::forward(at::Tensor x) {
  for (size_t k = 0; k < layers_.size(); ++k) x = layer_forward(k, x);
  return x;
}

at::Tensor MlpBlockImpl::layer_forward(size_t k, const at::Tensor& x) {
  return mtl::dropout(activate(layers_[k]->forward(x), options_.activation()), options_.dropout(), is_training());
}

int64_t MlpBlockImpl::out_features() const {
  return options_.hidden().empty() ? options_.in_features() : options_.hidden().back();
}

std::vector<std::string> MlpBlockImpl::layer_names() const {
  std::vector<std::string> out;
  for (size_t k = 0; k < layers_.size(); ++k)
    out.push_back(std::to_string(static_cast<int64_t>(k) * options_.index_stride()));
  return out;
}

}  // namespace mtl
