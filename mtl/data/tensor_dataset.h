// TensorDataset: a Dataset held in memory as whole tensors, one row per example. The image and tabular
// sources (multi_fashion, fashion_mnist, idx, csv) all load into one.
//
//   auto ds = std::make_shared<mtl::TensorDataset>(schema, images_u8_NCHW, labels,
//                                                  mtl::InputTransform::normalization({0.5}, {0.5}));
//   mtl::Batch b = ds->batch({0, 5, 7});   // inputs["image"]: float32 [3,C,H,W]; targets["left"]: int64 [3]
//
// Inputs are stored compactly and converted per batch: uint8 images [N,C,H,W] become float32 scaled to
// [0,1]; float features [N,F] are kept as float32. Then, as an InputTransform says, images are repeated to more
// channels and resized, and (x - mean) / std is applied.
// Labels are validated once at construction, so a bad label shows up when the data is opened, not as a
// crash deep inside a loss.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "mtl/data/dataset.h"

namespace mtl {

/// What is done to each batch of inputs after scaling, in this order: 1-channel images repeated to `channels`
/// (0 = as stored), images resized to `size` {H, W} (bilinear, as torch.nn.functional.interpolate with
/// align_corners=False; {} = as stored), then (x - mean) / std with one value for all channels or features, or one
/// per channel (images [N,C,H,W], after the repeat) or per feature (features [N,F]); empty = none.
struct InputTransform {
  std::vector<double> mean;
  std::vector<double> std;
  int64_t channels = 0;
  std::vector<int64_t> size;

  /// Only (x - mean) / std.
  static InputTransform normalization(std::vector<double> mean, std::vector<double> std);

  bool normalizes() const { return !mean.empty(); }
  /// The per-example shape after the transform, for a stored one ({C, H, W} for images).
  std::vector<int64_t> output_shape(std::vector<int64_t> stored) const;
};

class TensorDataset : public Dataset {
 public:
  /// `schema` names the one input and the labels; `input` is uint8 [N,C,H,W] or floating [N,...];
  /// `labels` holds one tensor per schema label: class labels of any integer type, [N], values in
  /// [0, size) (stored as int64); real and multi-label labels floating, [N] or [N,size] (stored float32);
  /// pixel labels [N,H,W]: classes of any integer type (uint8 kept compact, int64 per batch), values floating
  /// or uint8 (kept compact, scaled to [0,1] per batch).
  /// `origin` names the data in error messages (a file, "multi_fashion train", ...).
  TensorDataset(DatasetSchema schema, at::Tensor input, TensorMap labels, InputTransform transform = {},
                std::string origin = "");

  int64_t size() const override { return size_; }
  /// Thread-safe: reads the stored tensors only.
  Batch batch(const std::vector<int64_t>& indices) const override;

  const DatasetSchema& schema() const { return schema_; }
  /// The stored (unconverted) input and labels.
  const at::Tensor& input() const { return input_; }
  const TensorMap& labels() const { return labels_; }

 private:
  DatasetSchema schema_;
  std::string input_name_;
  at::Tensor input_;
  TensorMap labels_;
  InputTransform transform_;
  at::Tensor mean_, std_;  // shaped to broadcast over one batch; undefined when not normalising
  int64_t size_ = 0;
};

}  // namespace mtl
