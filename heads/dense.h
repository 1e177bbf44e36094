// Dense prediction heads: `segmentation` (per-pixel class logits [B, K, H, W]; loss cross_entropy per pixel;
// metrics miou, pixel_accuracy) and `dense_regression` (per-pixel values [B, H, W]; loss mse; metrics abs_err,
// rel_err). Both decode the trunk's feature maps (TrunkOutput::maps: hps, cross_stitch, mtan or branch over a
// backbone whose stages give maps, e.g. lenet or resnet) with a small decoder of their own:
//   y = ReLU(sum_i upsample(Conv1x1_i(map_i)))      each map to `width` channels, bilinear to the label's H x W
//   y = ReLU(Conv3x3(y));  out = Conv1x1(y)           to K classes or 1 value
// so every map (fine and coarse) reaches every output pixel, as in the hypercolumn / FPN-style decoders of
// dense multi-task work.
//
//   YAML: tasks: {segment: {label: segment, type: segmentation, head: {width: 16}}}
//         tasks: {depth: {label: left_pixels, type: dense_regression}}
#pragma once

#include <torch/arg.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>

#include <cstdint>
#include <vector>

#include "heads/head.h"

namespace mtl {

struct DenseHeadOptions {
  DenseHeadOptions(std::vector<int64_t> map_channels, int64_t out_channels, std::vector<int64_t> shape)
      : map_channels_(std::move(map_channels)), out_channels_(out_channels), shape_(std::move(shape)) {}
  /// `width` from the head's node; the rest from the label and the architecture's maps.
  static DenseHeadOptions from_config(const ConfigNode& options, const HeadContext& ctx, int64_t out_channels);
  void validate() const;
  TORCH_ARG(std::vector<int64_t>, map_channels);  // channels of each feature map read, input side first
  TORCH_ARG(int64_t, out_channels);               // classes (segmentation) or 1 (dense_regression)
  TORCH_ARG(std::vector<int64_t>, shape);         // the label's {H, W}
  TORCH_ARG(int64_t, width) = 16;                 // the decoder's channels
};

/// The decoder above; `values` squeezes the single output channel away ([B, H, W], dense_regression).
class DenseHeadImpl : public HeadImpl {
 public:
  DenseHeadImpl(DenseHeadOptions options, bool values);
  at::Tensor forward(const at::Tensor& features) override;  // refused: a dense head reads maps
  at::Tensor forward_maps(const std::vector<at::Tensor>& maps) override;
  /// Classes [B, H, W] (arg-max over the logits) or the values themselves.
  at::Tensor predict(const at::Tensor& output) const override;
  bool dense() const override { return true; }

 private:
  DenseHeadOptions options_;
  bool values_;
  torch::nn::ModuleList lateral_;
  torch::nn::Conv2d fuse_{nullptr}, out_{nullptr};
};

/// Registry factories.
Head make_segmentation_head(const ConfigNode& options, const HeadContext& ctx);
Head make_dense_regression_head(const ConfigNode& options, const HeadContext& ctx);

}  // namespace mtl
