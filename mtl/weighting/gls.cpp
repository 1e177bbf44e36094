#include "mtl/weighting/gls.h"

#include <algorithm>
#include <cmath>

namespace mtl {

GlsOptions GlsOptions::from_config(const ConfigNode&) { return {}; }

std::vector<double> Gls::loss_weights(const std::vector<double>& losses, const StepContext&) {
  const double T = static_cast<double>(losses.size());
  double log_mean = 0;
  for (double l : losses) log_mean += std::log(std::max(l, 1e-12)) / T;
  const double geo = std::exp(log_mean);
  std::vector<double> w;
  for (double l : losses) w.push_back(geo / (T * std::max(l, 1e-12)));
  last_weights_ = w;
  return w;
}

}  // namespace mtl
