// Regression metrics over all elements of real-valued outputs and targets ([B] or [B, D]): mean
// absolute error, root mean squared error and the coefficient of determination R^2. Sums are kept in
// double, so results do not depend on how the examples were split into batches (up to rounding).
//
//   mtl::RSquared r2(mtl::RSquaredOptions(3));  r2.update(values, targets);  double r = r2.compute();
//   YAML: metrics: [mae, rmse, r2]
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mtl/metrics/metric.h"

namespace mtl {

/// mean |x - y| over all elements; 0 before any update.
class MeanAbsoluteError : public Metric {
 public:
  void reset() override {
    sum_abs_ = 0.0;
    count_ = 0;
  }
  void update(const at::Tensor& output, const at::Tensor& target) override;
  double compute() const override;
  bool higher_is_better() const override { return false; }
  std::string name() const override { return "mae"; }
  std::vector<double> state() const override;
  void merge(const std::vector<double>& part) override;

 private:
  double sum_abs_ = 0.0;
  int64_t count_ = 0;
};

/// sqrt(mean (x - y)^2) over all elements; 0 before any update.
class RootMeanSquaredError : public Metric {
 public:
  void reset() override {
    sum_sq_ = 0.0;
    count_ = 0;
  }
  void update(const at::Tensor& output, const at::Tensor& target) override;
  double compute() const override;
  bool higher_is_better() const override { return false; }
  std::string name() const override { return "rmse"; }
  std::vector<double> state() const override;
  void merge(const std::vector<double>& part) override;

 private:
  double sum_sq_ = 0.0;
  int64_t count_ = 0;
};

struct RSquaredOptions {
  RSquaredOptions(int64_t dims) : dims_(dims) {}  // NOLINT: implicit, so RSquared(3) reads well
  TORCH_ARG(int64_t, dims);  // output dimensions D (1 for [B] outputs), > 0

 public:
  /// No options in YAML; the label's size gives the dimensions.
  static RSquaredOptions from_config(const ConfigNode& options, const LabelInfo& label);
  /// Throws mtl::Error(key, expected) for the first bad value.
  void validate() const;
};

/// R^2 = 1 - SS_res / SS_tot over all elements, with SS_res = sum (y - x)^2 and SS_tot = sum (y - mean)^2
/// around the mean of the targets, taken per output dimension for [B, D] labels (sklearn's
/// "variance_weighted" R^2; the same as the plain definition when D = 1). When SS_tot = 0 (constant
/// targets) it is 1 for a perfect fit and 0 otherwise; 0 before any update.
/// Target means and SS_tot are accumulated with Chan et al.'s pairwise update, which stays accurate
/// where sum y^2 - (sum y)^2 / n would cancel.
class RSquared : public Metric {
 public:
  explicit RSquared(RSquaredOptions options);
  void reset() override;
  void update(const at::Tensor& output, const at::Tensor& target) override;
  double compute() const override;
  bool higher_is_better() const override { return true; }
  std::string name() const override { return "r2"; }
  std::vector<double> state() const override;
  void merge(const std::vector<double>& part) override;

 private:
  int64_t count_ = 0;          // examples
  std::vector<double> mean_;   // target mean per dimension
  std::vector<double> m2_;     // sum of squared deviations from mean_ per dimension
  double ss_res_ = 0.0;
};

/// Registry factories (mae and rmse have no options; r2 is from_config + constructor).
std::unique_ptr<Metric> make_mae(const ConfigNode& options, const LabelInfo& label);
std::unique_ptr<Metric> make_rmse(const ConfigNode& options, const LabelInfo& label);
std::unique_ptr<Metric> make_r2(const ConfigNode& options, const LabelInfo& label);

}  // namespace mtl
