#include "heads/dense.h"

#include <ATen/ATen.h>
#include <torch/nn/functional/upsampling.h>

#include "mtl/config/config_node.h"
#include "mtl/config/option_check.h"
#include "mtl/core/error.h"

namespace mtl {

at::Tensor HeadImpl::forward_maps(const std::vector<at::Tensor>&) {
  TORCH_CHECK(false, "this head reads pooled features, not feature maps");
}

DenseHeadOptions DenseHeadOptions::from_config(const ConfigNode& options, const HeadContext& ctx,
                                               int64_t out_channels) {
  DenseHeadOptions o(ctx.map_channels, out_channels, ctx.label.shape);
  o.width(options.get<int64_t>("width", o.width()));
  validate_config(options, [&] { o.validate(); });
  return o;
}

void DenseHeadOptions::validate() const {
  check(width_ >= 1, "width", "expected a number >= 1, got " + std::to_string(width_));
  check(!map_channels_.empty(), "map_channels", "expected at least one feature map");
  check(shape_.size() == 2 && shape_[0] > 0 && shape_[1] > 0, "shape", "expected the label's {H, W}");
}

DenseHeadImpl::DenseHeadImpl(DenseHeadOptions options, bool values)
    : options_(std::move(options)), values_(values) {
  validate_options("DenseHeadOptions", [&] { options_.validate(); });
  const int64_t w = options_.width();
  for (int64_t c : options_.map_channels()) lateral_->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(c, w, 1)));
  register_module("lateral", lateral_);
  fuse_ = register_module("fuse", torch::nn::Conv2d(torch::nn::Conv2dOptions(w, w, 3).padding(1)));
  out_ = register_module("out", torch::nn::Conv2d(torch::nn::Conv2dOptions(w, options_.out_channels(), 1)));
}

at::Tensor DenseHeadImpl::forward(const at::Tensor&) {
  TORCH_CHECK(false, "a dense head reads feature maps (forward_maps)");
}

at::Tensor DenseHeadImpl::forward_maps(const std::vector<at::Tensor>& maps) {
  TORCH_CHECK(maps.size() == lateral_->size(), "dense head: expected ", lateral_->size(), " feature maps, got ",
              maps.size());
  namespace F = torch::nn::functional;
  const auto size = F::InterpolateFuncOptions()
                        .size(options_.shape())
                        .mode(torch::kBilinear)
                        .align_corners(false);
  at::Tensor y;
  for (size_t i = 0; i < maps.size(); ++i) {
    at::Tensor z = lateral_[i]->as<torch::nn::Conv2d>()->forward(maps[i]);
    if (z.sizes().slice(2).vec() != options_.shape()) z = F::interpolate(z, size);
    y = y.defined() ? y + z : z;
  }
  y = out_->forward(at::relu(fuse_->forward(at::relu(y))));
  return values_ ? y.squeeze(1) : y;
}

at::Tensor DenseHeadImpl::predict(const at::Tensor& output) const { return values_ ? output : output.argmax(1); }

Head make_segmentation_head(const ConfigNode& options, const HeadContext& ctx) {
  return std::make_shared<DenseHeadImpl>(DenseHeadOptions::from_config(options, ctx, ctx.label.size), false);
}

Head make_dense_regression_head(const ConfigNode& options, const HeadContext& ctx) {
  return std::make_shared<DenseHeadImpl>(DenseHeadOptions::from_config(options, ctx, 1), true);
}

}  // namespace mtl
