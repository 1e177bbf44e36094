#include "heads/regression.h"

#include "mtl/config/config_node.h"
#include "mtl/config/option_check.h"

namespace mtl {

RegressionHeadOptions RegressionHeadOptions::from_config(const ConfigNode& options, const HeadContext& ctx) {
  return RegressionHeadOptions(MlpHeadOptions::from_config(options, ctx.in_features, ctx.label.size));
}

RegressionHeadImpl::RegressionHeadImpl(MlpHeadOptions options)
    : MlpHeadImpl(std::move(options)), squeeze_(out_features() == 1) {}

at::Tensor RegressionHeadImpl::forward(const at::Tensor& features) {
  at::Tensor out = MlpHeadImpl::forward(features);
  return squeeze_ ? out.squeeze(1) : out;
}

at::Tensor RegressionHeadImpl::predict(const at::Tensor& output) const { return output; }

Head make_regression_head(const ConfigNode& options, const HeadContext& ctx) {
  return std::make_shared<RegressionHeadImpl>(RegressionHeadOptions::from_config(options, ctx));
}

namespace {

void check_same_shape(const char* loss, const at::Tensor& output, const at::Tensor& target) {
  TORCH_CHECK(output.sizes() == target.sizes(), loss, ": expected outputs and targets of the same shape, got ",
              output.sizes(), " and ", target.sizes());
}

}  // namespace

at::Tensor mse_loss(const at::Tensor& output, const at::Tensor& target) {
  check_same_shape("mse", output, target);
  return torch::mse_loss(output, target.to(output.scalar_type()), at::Reduction::Mean);
}

at::Tensor l1_loss(const at::Tensor& output, const at::Tensor& target) {
  check_same_shape("l1", output, target);
  return torch::l1_loss(output, target.to(output.scalar_type()), at::Reduction::Mean);
}

HuberLossOptions HuberLossOptions::from_config(const ConfigNode& n) {
  HuberLossOptions o;
  o.delta(n.get<double>("delta", o.delta()));
  validate_config(n, [&] { o.validate(); });
  return o;
}

void HuberLossOptions::validate() const {
  check(delta_ > 0, "delta", "expected a positive number, got " + std::to_string(delta_));
}

at::Tensor huber_loss(const at::Tensor& output, const at::Tensor& target, const HuberLossOptions& options) {
  check_same_shape("huber", output, target);
  return torch::huber_loss(output, target.to(output.scalar_type()), at::Reduction::Mean, options.delta());
}

HuberLoss::HuberLoss(HuberLossOptions options) : options_(std::move(options)) {
  validate_options("HuberLossOptions", [&] { options_.validate(); });
}

at::Tensor HuberLoss::operator()(const at::Tensor& output, const at::Tensor& target) const {
  return mtl::huber_loss(output, target, options_);
}

LossFn make_mse_loss(const ConfigNode&, const LabelInfo&) { return MseLoss(); }
LossFn make_l1_loss(const ConfigNode&, const LabelInfo&) { return L1Loss(); }
LossFn make_huber_loss(const ConfigNode& n, const LabelInfo&) { return HuberLoss(HuberLossOptions::from_config(n)); }

}  // namespace mtl
