#include "mtl/data/tensor_dataset.h"

#include <ATen/ATen.h>

#include "mtl/core/error.h"

namespace mtl {
namespace {

// Builds a [1, k, 1, ...] tensor (k = 1 or the channel/feature count `k`) that broadcasts over a batch of `dim`
// dimensions.
at::Tensor broadcast_stat(const std::vector<double>& values, int64_t k, int64_t dim, const std::string& origin,
                          const char* what) {
  if (values.size() != 1 && static_cast<int64_t>(values.size()) != k)
    throw Error(origin, std::string("normalisation ") + what + " has " + std::to_string(values.size()) +
                            " values; expected 1 or " + std::to_string(k));
  std::vector<int64_t> shape(dim, 1);
  shape[1] = static_cast<int64_t>(values.size());
  std::vector<float> f(values.begin(), values.end());
  return at::tensor(f, at::kFloat).reshape(shape);
}

// Pixel labels stay compact ([N, H, W] uint8 where they fit): class maps are checked here and widened to int64
// per batch, uint8 value maps are scaled to [0, 1] per batch.
at::Tensor pixel_label(const LabelInfo& info, const at::Tensor& y, const std::string& where) {
  if (y.dim() != 3 || y.sizes().slice(1).vec() != info.shape)
    throw Error(where, "label '" + info.name + "': expected one " + std::to_string(info.shape.at(0)) + " x " +
                           std::to_string(info.shape.at(1)) + " map per example");
  if (info.kind == LabelKind::kPixelReal)
    return y.scalar_type() == at::kByte ? y.contiguous() : y.to(at::kFloat).contiguous();
  if (at::isFloatingType(y.scalar_type()))
    throw Error(where, "label '" + info.name + "': expected integer class indices per pixel");
  at::Tensor bad = ((y < 0) | (y >= info.size)).nonzero();
  if (bad.numel() > 0) {
    const int64_t i = bad[0][0].item<int64_t>();
    throw Error(where, "label '" + info.name + "': example " + std::to_string(i) + " has a pixel of class " +
                           std::to_string(y.index({bad[0][0], bad[0][1], bad[0][2]}).item<int64_t>()) +
                           ", expected classes in [0, " + std::to_string(info.size) + ")");
  }
  return y.scalar_type() == at::kByte ? y.contiguous() : y.to(at::kLong).contiguous();
}

}  // namespace

InputTransform InputTransform::normalization(std::vector<double> mean, std::vector<double> std) {
  InputTransform t;
  t.mean = std::move(mean);
  t.std = std::move(std);
  return t;
}

std::vector<int64_t> InputTransform::output_shape(std::vector<int64_t> stored) const {
  if (stored.size() == 3) {
    if (channels > 0) stored[0] = channels;
    if (size.size() == 2) {
      stored[1] = size[0];
      stored[2] = size[1];
    }
  }
  return stored;
}

TensorDataset::TensorDataset(DatasetSchema schema, at::Tensor input, TensorMap labels, InputTransform transform,
                             std::string origin)
    : schema_(std::move(schema)), transform_(std::move(transform)) {
  TORCH_CHECK(schema_.inputs.size() == 1, "TensorDataset holds exactly one input");
  TORCH_CHECK(input.defined() && input.dim() >= 2, "TensorDataset input must be [N, ...]");
  input_name_ = schema_.inputs[0].name;
  TORCH_CHECK(transform_.output_shape(input.sizes().slice(1).vec()) == schema_.inputs[0].shape,
              "TensorDataset input '", input_name_, "' has shape ", input.sizes(),
              " (before its transform), the schema says [N] + ", schema_.inputs[0].shape);
  const bool image_ops = transform_.channels > 0 || !transform_.size.empty();
  TORCH_CHECK(!image_ops || input.dim() == 4, "channel repeats and resizing need images [N,C,H,W]");
  if (transform_.channels > 0 && input.size(1) != transform_.channels && input.size(1) != 1)
    throw Error(origin, "cannot repeat " + std::to_string(input.size(1)) + "-channel images to " +
                            std::to_string(transform_.channels) + " channels (only 1-channel images repeat)");
  size_ = input.size(0);
  if (input.scalar_type() == at::kByte) {
    TORCH_CHECK(input.dim() == 4, "uint8 input must be images [N,C,H,W]");
    input_ = input.contiguous();
  } else {
    TORCH_CHECK(at::isFloatingType(input.scalar_type()), "TensorDataset input must be uint8 or floating");
    input_ = input.to(at::kFloat).contiguous();
  }

  for (const LabelInfo& info : schema_.labels) {
    auto it = labels.find(info.name);
    TORCH_CHECK(it != labels.end(), "TensorDataset: no tensor for label '", info.name, "'");
    at::Tensor y = it->second;
    const std::string where = origin.empty() ? "label '" + info.name + "'" : origin;
    if (y.size(0) != size_)
      throw Error(where, "label '" + info.name + "' has " + std::to_string(y.size(0)) + " values for " +
                             std::to_string(size_) + " examples");
    if (is_pixel_label(info.kind)) {
      y = pixel_label(info, y, where);
    } else if (info.kind == LabelKind::kClass) {
      if (y.dim() != 1 || at::isFloatingType(y.scalar_type()))
        throw Error(where, "label '" + info.name + "': expected one integer class index per example");
      y = y.to(at::kLong).contiguous();
      // Find the first offending example, so the message can name it.
      at::Tensor bad = ((y < 0) | (y >= info.size)).nonzero();
      if (bad.numel() > 0) {
        int64_t i = bad[0][0].item<int64_t>();
        throw Error(where, "label '" + info.name + "': example " + std::to_string(i) + " has class " +
                               std::to_string(y[i].item<int64_t>()) + ", expected a class in [0, " +
                               std::to_string(info.size) + ")");
      }
    } else {
      y = y.to(at::kFloat).contiguous();
      bool shape_ok = (y.dim() == 1 && info.size == 1) || (y.dim() == 2 && y.size(1) == info.size);
      if (!shape_ok)
        throw Error(where, "label '" + info.name + "': expected " + std::to_string(info.size) +
                               " value(s) per example");
    }
    labels_[info.name] = y;
  }

  if (transform_.normalizes()) {
    const InputTransform& t = transform_;
    TORCH_CHECK(t.mean.size() == t.std.size(), "normalisation mean and std differ in length");
    for (double s : t.std)
      if (!(s > 0)) throw Error(origin, "normalisation std must be positive, got " + std::to_string(s));
    const int64_t k = schema_.inputs[0].shape.at(0);  // channels (after a repeat) or features
    mean_ = broadcast_stat(t.mean, k, input_.dim(), origin, "mean");
    std_ = broadcast_stat(t.std, k, input_.dim(), origin, "std");
  }
}

Batch TensorDataset::batch(const std::vector<int64_t>& indices) const {
  for (int64_t i : indices) TORCH_CHECK(i >= 0 && i < size_, "example index ", i, " out of range [0, ", size_, ")");
  // from_blob does not copy; index_select only reads it during this call.
  at::Tensor idx = at::from_blob(const_cast<int64_t*>(indices.data()), {static_cast<int64_t>(indices.size())},
                                 at::TensorOptions().dtype(at::kLong));
  Batch b;
  b.size = static_cast<int64_t>(indices.size());
  at::Tensor x = input_.index_select(0, idx);
  if (x.scalar_type() == at::kByte) x = x.to(at::kFloat).div_(255.0);
  if (transform_.channels > 0 && x.size(1) != transform_.channels)
    x = x.expand({x.size(0), transform_.channels, x.size(2), x.size(3)}).contiguous();
  if (!transform_.size.empty())
    x = at::upsample_bilinear2d(x, transform_.size, /*align_corners=*/false);
  if (mean_.defined()) x = x.sub_(mean_).div_(std_);
  b.inputs[input_name_] = x;
  for (const auto& kv : labels_) {
    at::Tensor y = kv.second.index_select(0, idx);
    if (y.scalar_type() == at::kByte)  // a compact pixel map
      y = schema_.label(kv.first)->kind == LabelKind::kPixelReal ? y.to(at::kFloat).div_(255.0) : y.to(at::kLong);
    b.targets[kv.first] = y;
  }
  return b;
}

}  // namespace mtl
