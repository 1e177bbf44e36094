#include "mtl/metrics/regression_metrics.h"

#include <algorithm>
#include <cmath>

#include "mtl/config/config_node.h"
#include "mtl/config/option_check.h"

namespace mtl {

void MeanAbsoluteError::update(const at::Tensor& output, const at::Tensor& target) {
  auto [x, y] = same_shape_doubles("mae", output, target);
  sum_abs_ += (x - y).abs().sum().item<double>();
  count_ += x.numel();
}

double MeanAbsoluteError::compute() const { return count_ == 0 ? 0.0 : sum_abs_ / count_; }

void RootMeanSquaredError::update(const at::Tensor& output, const at::Tensor& target) {
  auto [x, y] = same_shape_doubles("rmse", output, target);
  sum_sq_ += (x - y).square().sum().item<double>();
  count_ += x.numel();
}

double RootMeanSquaredError::compute() const { return count_ == 0 ? 0.0 : std::sqrt(sum_sq_ / count_); }

RSquaredOptions RSquaredOptions::from_config(const ConfigNode&, const LabelInfo& label) { return {label.size}; }

void RSquaredOptions::validate() const {
  check(dims_ > 0, "dims", "expected a positive number, got " + std::to_string(dims_));
}

RSquared::RSquared(RSquaredOptions options) {
  validate_options("RSquaredOptions", [&] { options.validate(); });
  mean_.assign(options.dims(), 0.0);
  m2_.assign(options.dims(), 0.0);
}

void RSquared::reset() {
  count_ = 0;
  std::fill(mean_.begin(), mean_.end(), 0.0);
  std::fill(m2_.begin(), m2_.end(), 0.0);
  ss_res_ = 0.0;
}

void RSquared::update(const at::Tensor& output, const at::Tensor& target) {
  auto [x, y] = same_shape_doubles("r2", output, target);
  const int64_t b = y.size(0);
  if (b == 0) return;
  const int64_t dims = static_cast<int64_t>(mean_.size());
  y = y.reshape({b, -1});
  TORCH_CHECK(y.size(1) == dims, "r2: expected ", dims, " output dimensions, got ", y.size(1));
  ss_res_ += (x.reshape({b, -1}) - y).square().sum().item<double>();

  // Merge this batch's (count, mean, M2) into the running ones per dimension (Chan et al.).
  at::Tensor batch_mean = y.mean(0);
  at::Tensor batch_m2 = (y - batch_mean).square().sum(0).contiguous();
  batch_mean = batch_mean.contiguous();
  const double* bm = batch_mean.data_ptr<double>();
  const double* bm2 = batch_m2.data_ptr<double>();
  const double n_a = static_cast<double>(count_), n_b = static_cast<double>(b), n = n_a + n_b;
  for (int64_t d = 0; d < dims; ++d) {
    const double delta = bm[d] - mean_[d];
    mean_[d] += delta * n_b / n;
    m2_[d] += bm2[d] + delta * delta * n_a * n_b / n;
  }
  count_ += b;
}

double RSquared::compute() const {
  if (count_ == 0) return 0.0;
  double ss_tot = 0.0;
  for (double m2 : m2_) ss_tot += m2;
  if (ss_tot == 0.0) return ss_res_ == 0.0 ? 1.0 : 0.0;  // constant targets: R^2 undefined
  return 1.0 - ss_res_ / ss_tot;
}

std::unique_ptr<Metric> make_mae(const ConfigNode&, const LabelInfo&) {
  return std::make_unique<MeanAbsoluteError>();
}

std::unique_ptr<Metric> make_rmse(const ConfigNode&, const LabelInfo&) {
  return std::make_unique<RootMeanSquaredError>();
}

std::unique_ptr<Metric> make_r2(const ConfigNode& n, const LabelInfo& label) {
  return std::make_unique<RSquared>(RSquaredOptions::from_config(n, label));
}

// Distributed evaluation (Metric::state/merge): sums and counts; R^2 merges (count, mean, M2) as update() does.
std::vector<double> MeanAbsoluteError::state() const { return {sum_abs_, double(count_)}; }
void MeanAbsoluteError::merge(const std::vector<double>& part) {
  check_metric_part(*this, part, 2);
  sum_abs_ += part[0];
  count_ += static_cast<int64_t>(part[1]);
}

std::vector<double> RootMeanSquaredError::state() const { return {sum_sq_, double(count_)}; }
void RootMeanSquaredError::merge(const std::vector<double>& part) {
  check_metric_part(*this, part, 2);
  sum_sq_ += part[0];
  count_ += static_cast<int64_t>(part[1]);
}

std::vector<double> RSquared::state() const {
  std::vector<double> out{double(count_), ss_res_};
  out.insert(out.end(), mean_.begin(), mean_.end());
  out.insert(out.end(), m2_.begin(), m2_.end());
  return out;
}
void RSquared::merge(const std::vector<double>& part) {
  const size_t dims = mean_.size();
  check_metric_part(*this, part, 2 + 2 * dims);
  const double n_a = static_cast<double>(count_), n_b = part[0], n = n_a + n_b;
  ss_res_ += part[1];
  if (n_b == 0) return;
  for (size_t d = 0; d < dims; ++d) {
    const double delta = part[2 + d] - mean_[d];
    mean_[d] += delta * n_b / n;
    m2_[d] += part[2 + dims + d] + delta * delta * n_a * n_b / n;
  }
  count_ += static_cast<int64_t>(n_b);
}

}  // namespace mtl
