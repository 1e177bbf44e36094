#include "mtl/weighting/dwa.h"

#include <ATen/ATen.h>
#include <torch/serialize/archive.h>

#include <cmath>

#include "mtl/config/config_node.h"
#include "mtl/weighting/method_support.h"

namespace mtl {

DwaOptions DwaOptions::from_config(const ConfigNode& options) {
  return DwaOptions().temperature(positive<double>(options, "temperature", 2.0));
}

Dwa::Dwa(int64_t tasks, DwaOptions options) : tasks_(static_cast<size_t>(tasks)), temperature_(options.temperature()) {
  check_option(temperature_ > 0, "DwaOptions", "temperature", got("expected a positive number", temperature_));
  last_weights_.assign(tasks_, 1.0);
}

std::vector<double> Dwa::loss_weights(const std::vector<double>&, const StepContext& ctx) {
  std::vector<double> w(tasks_, 1.0);
  if (history_.size() >= 2) {
    const auto& prev = history_[history_.size() - 2];
    const auto& last = history_.back();
    std::vector<double> z(tasks_);
    double zmax = -INFINITY;
    for (size_t t = 0; t < tasks_; ++t) {
      z[t] = last[t] / std::max(prev[t], 1e-12) / temperature_;
      zmax = std::max(zmax, z[t]);
    }
    double sum = 0;
    for (size_t t = 0; t < tasks_; ++t) sum += std::exp(z[t] - zmax);
    for (size_t t = 0; t < tasks_; ++t) w[t] = static_cast<double>(tasks_) * std::exp(z[t] - zmax) / sum;
  }
  last_weights_ = ctx.select(w);  // a step without some tasks keeps the others' weights
  return last_weights_;
}

void Dwa::on_epoch_end(const std::vector<double>& epoch_losses) {
  history_.push_back(epoch_losses);
  if (history_.size() > 2) history_.erase(history_.begin());
}

void Dwa::save(torch::serialize::OutputArchive& a) const {
  at::Tensor h = at::zeros({static_cast<int64_t>(history_.size()), static_cast<int64_t>(tasks_)}, at::kDouble);
  for (size_t e = 0; e < history_.size(); ++e)
    for (size_t t = 0; t < tasks_; ++t) h[e][t] = history_[e][t];
  a.write("epoch_losses", h);
}

void Dwa::load(torch::serialize::InputArchive& a) {
  at::Tensor h;
  a.read("epoch_losses", h);
  TORCH_CHECK(h.dim() == 2 && h.size(1) == static_cast<int64_t>(tasks_), "checkpoint DWA state has the wrong shape");
  history_.clear();
  for (int64_t e = 0; e < h.size(0); ++e) {
    std::vector<double> row;
    for (size_t t = 0; t < tasks_; ++t) row.push_back(h[e][t].item<double>());
    history_.push_back(row);
  }
}

}  // namespace mtl
