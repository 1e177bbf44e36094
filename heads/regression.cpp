#include "heads/regression.h"

#include "mtl/config/config_node.h"

namespace mtl {

RegressionHeadImpl::RegressionHeadImpl(int64_t in_features, int64_t dims, MlpHeadOptions options)
    : MlpHeadImpl(in_features, dims, std::move(options)), squeeze_(dims == 1) {}

at::Tensor RegressionHeadImpl::forward(const at::Tensor& features) {
  at::Tensor out = MlpHeadImpl::forward(features);
  return squeeze_ ? out.squeeze(1) : out;
}

at::Tensor RegressionHeadImpl::predict(const at::Tensor& output) const { return output; }

Head make_regression_head(const ConfigNode& options, const HeadContext& ctx) {
  MlpHeadOptions mlp = MlpHeadOptions::from_config(options);
  return std::make_shared<RegressionHeadImpl>(ctx.in_features, ctx.label.size, std::move(mlp));
}

namespace {

void check_same_shape(const char* loss, const at::Tensor& output, const at::Tensor& target) {
  TORCH_CHECK(output.sizes() == target.sizes(), loss, ": expected outputs and targets of the same shape, got ",
              output.sizes(), " and ", target.sizes());
}

}  // namespace

LossFn make_mse_loss(const ConfigNode&, const LabelInfo&) {
  return [](const at::Tensor& output, const at::Tensor& target) {
    check_same_shape("mse", output, target);
    return torch::mse_loss(output, target.to(output.scalar_type()), at::Reduction::Mean);
  };
}

LossFn make_l1_loss(const ConfigNode&, const LabelInfo&) {
  return [](const at::Tensor& output, const at::Tensor& target) {
    check_same_shape("l1", output, target);
    return torch::l1_loss(output, target.to(output.scalar_type()), at::Reduction::Mean);
  };
}

LossFn make_huber_loss(const ConfigNode& n, const LabelInfo&) {
  const double delta = positive<double>(n, "delta", 1.0);
  return [delta](const at::Tensor& output, const at::Tensor& target) {
    check_same_shape("huber", output, target);
    return torch::huber_loss(output, target.to(output.scalar_type()), at::Reduction::Mean, delta);
  };
}

}  // namespace mtl
