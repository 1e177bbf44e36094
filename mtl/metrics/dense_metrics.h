// Dense prediction metrics, over every pixel of every example. Segmentation outputs are logits [B, K, H, W]
// against class maps [B, H, W]; dense regression outputs [B, H, W] against value maps [B, H, W]. Counts and
// sums are kept exactly (int64, double), so results do not depend on batching and merge across processes.
//
//   mtl::MeanIoU miou(4);  miou.update(logits, classes);  double m = miou.compute();
//   YAML: metrics: [miou, pixel_accuracy]          (segmentation)
//         metrics: [abs_err, rel_err]               (dense_regression; mae and rmse work too)
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mtl/metrics/metric.h"

namespace mtl {

/// Share of pixels whose arg-max class is the target's.
class PixelAccuracy : public Metric {
 public:
  void reset() override { correct_ = total_ = 0; }
  void update(const at::Tensor& output, const at::Tensor& target) override;
  double compute() const override { return total_ == 0 ? 0.0 : double(correct_) / double(total_); }
  bool higher_is_better() const override { return true; }
  std::string name() const override { return "pixel_accuracy"; }
  std::vector<double> state() const override { return {double(correct_), double(total_)}; }
  void merge(const std::vector<double>& part) override { merge_counts(*this, part, {&correct_, &total_}); }

 private:
  int64_t correct_ = 0, total_ = 0;
};

/// Mean over classes of |prediction AND target| / |prediction OR target| (pixels), from a K x K confusion matrix;
/// classes that occur in neither the targets nor the predictions are left out of the mean.
class MeanIoU : public Metric {
 public:
  explicit MeanIoU(int64_t classes);
  void reset() override;
  void update(const at::Tensor& output, const at::Tensor& target) override;
  double compute() const override;
  bool higher_is_better() const override { return true; }
  std::string name() const override { return "miou"; }
  std::vector<double> state() const override;
  void merge(const std::vector<double>& part) override;
  /// Intersection over union of one class (0 when it occurs nowhere).
  double iou(int64_t cls) const;

 private:
  int64_t classes_;
  std::vector<int64_t> confusion_;  // [target][predicted], row-major
};

/// A mean of a per-pixel error over the pixels it counts: the sum and the count, exact to merge.
class PixelErrorMean : public Metric {
 public:
  void reset() override {
    sum_ = 0.0;
    count_ = 0;
  }
  double compute() const override { return count_ == 0 ? 0.0 : sum_ / double(count_); }
  bool higher_is_better() const override { return false; }
  std::vector<double> state() const override { return {sum_, double(count_)}; }
  void merge(const std::vector<double>& part) override;

 protected:
  double sum_ = 0.0;
  int64_t count_ = 0;
};

/// Mean absolute error per pixel (abs_err: the name dense-prediction papers use; equal to mae).
class AbsoluteError : public PixelErrorMean {
 public:
  void update(const at::Tensor& output, const at::Tensor& target) override;
  std::string name() const override { return "abs_err"; }
};

/// Mean of |x - y| / y over the pixels with a target y > 0 (rel_err; pixels with y <= 0 have no relative error).
class RelativeError : public PixelErrorMean {
 public:
  void update(const at::Tensor& output, const at::Tensor& target) override;
  std::string name() const override { return "rel_err"; }
};

std::unique_ptr<Metric> make_pixel_accuracy(const ConfigNode& options, const LabelInfo& label);
std::unique_ptr<Metric> make_miou(const ConfigNode& options, const LabelInfo& label);
std::unique_ptr<Metric> make_abs_err(const ConfigNode& options, const LabelInfo& label);
std::unique_ptr<Metric> make_rel_err(const ConfigNode& options, const LabelInfo& label);

}  // namespace mtl
