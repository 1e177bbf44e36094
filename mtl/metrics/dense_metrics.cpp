#include "mtl/metrics/dense_metrics.h"

#include <ATen/ATen.h>

namespace mtl {
namespace {

// Predicted classes [N] and target classes [N] (int64, CPU) of a segmentation batch.
std::pair<at::Tensor, at::Tensor> pixel_classes(const char* metric, const at::Tensor& logits,
                                                const at::Tensor& target) {
  TORCH_CHECK(logits.dim() == 4 && target.dim() == 3 && logits.size(0) == target.size(0) &&
                  logits.sizes().slice(2) == target.sizes().slice(1),
              metric, ": expected logits [B, K, H, W] and classes [B, H, W], got ", logits.sizes(), " and ",
              target.sizes());
  return {logits.detach().argmax(1).reshape({-1}).to(at::kCPU, at::kLong),
          target.detach().reshape({-1}).to(at::kCPU, at::kLong)};
}

}  // namespace

void PixelAccuracy::update(const at::Tensor& output, const at::Tensor& target) {
  auto [pred, y] = pixel_classes("pixel_accuracy", output, target);
  correct_ += pred.eq(y).sum().item<int64_t>();
  total_ += y.numel();
}

MeanIoU::MeanIoU(int64_t classes) : classes_(classes), confusion_(static_cast<size_t>(classes * classes), 0) {
  TORCH_CHECK(classes >= 1, "miou: expected at least one class");
}

void MeanIoU::reset() { std::fill(confusion_.begin(), confusion_.end(), 0); }

void MeanIoU::update(const at::Tensor& output, const at::Tensor& target) {
  auto [pred, y] = pixel_classes("miou", output, target);
  TORCH_CHECK(output.size(1) == classes_, "miou: expected ", classes_, " classes, got logits for ", output.size(1));
  at::Tensor counts = at::bincount(y * classes_ + pred, {}, classes_ * classes_).contiguous();
  const int64_t* c = counts.data_ptr<int64_t>();
  for (int64_t i = 0; i < classes_ * classes_; ++i) confusion_[i] += c[i];
}

double MeanIoU::iou(int64_t cls) const {
  int64_t inter = confusion_[cls * classes_ + cls], uni = -inter;
  for (int64_t j = 0; j < classes_; ++j) uni += confusion_[cls * classes_ + j] + confusion_[j * classes_ + cls];
  return uni == 0 ? 0.0 : double(inter) / double(uni);
}

double MeanIoU::compute() const {
  double sum = 0.0;
  int64_t present = 0;
  for (int64_t k = 0; k < classes_; ++k) {
    int64_t uni = -confusion_[k * classes_ + k];
    for (int64_t j = 0; j < classes_; ++j) uni += confusion_[k * classes_ + j] + confusion_[j * classes_ + k];
    if (uni == 0) continue;
    sum += iou(k);
    ++present;
  }
  return present == 0 ? 0.0 : sum / double(present);
}

std::vector<double> MeanIoU::state() const { return std::vector<double>(confusion_.begin(), confusion_.end()); }

void MeanIoU::merge(const std::vector<double>& part) {
  check_metric_part(*this, part, confusion_.size());
  for (size_t i = 0; i < confusion_.size(); ++i) confusion_[i] += static_cast<int64_t>(part[i]);
}

void AbsoluteError::update(const at::Tensor& output, const at::Tensor& target) {
  auto [x, y] = same_shape_doubles("abs_err", output, target);
  sum_ += (x - y).abs().sum().item<double>();
  count_ += y.numel();
}

void RelativeError::update(const at::Tensor& output, const at::Tensor& target) {
  auto [x, y] = same_shape_doubles("rel_err", output, target);
  at::Tensor valid = y > 0;
  sum_ += ((x - y).abs() / y).masked_select(valid).sum().item<double>();
  count_ += valid.sum().item<int64_t>();
}

void PixelErrorMean::merge(const std::vector<double>& part) {
  check_metric_part(*this, part, 2);
  sum_ += part[0];
  count_ += static_cast<int64_t>(part[1]);
}

std::unique_ptr<Metric> make_pixel_accuracy(const ConfigNode&, const LabelInfo&) {
  return std::make_unique<PixelAccuracy>();
}
std::unique_ptr<Metric> make_miou(const ConfigNode&, const LabelInfo& label) {
  return std::make_unique<MeanIoU>(label.size);
}
std::unique_ptr<Metric> make_abs_err(const ConfigNode&, const LabelInfo&) { return std::make_unique<AbsoluteError>(); }
std::unique_ptr<Metric> make_rel_err(const ConfigNode&, const LabelInfo&) { return std::make_unique<RelativeError>(); }

}  // namespace mtl
