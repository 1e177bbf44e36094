// DWA, dynamic weight average (Liu, Johns & Davison, 2019): w_t = T * softmax_t(r_t / temperature), where
// r_t = L_t(e-1) / L_t(e-2) is the ratio of the task's mean training loss over the last two epochs. The
// first two epochs use w_t = 1. Weights change once per epoch, from epoch means, so they are the same for
// any thread count.
//   weighting: {method: dwa, temperature: 2.0}
#include <cmath>

#include <torch/serialize/archive.h>

#include "mtl/config/config_node.h"
#include "mtl/weighting/methods.h"

namespace mtl {

namespace {
class DwaWeighting : public Weighting {
 public:
  DwaWeighting(size_t tasks, double temperature) : tasks_(tasks), temperature_(temperature) {
    last_weights_.assign(tasks, 1.0);
  }

  std::vector<double> loss_weights(const std::vector<double>&, const StepContext& ctx) override {
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
  bool weights_ignore_step_losses() const override { return true; }
  void on_epoch_end(const std::vector<double>& epoch_losses) override {
    history_.push_back(epoch_losses);
    if (history_.size() > 2) history_.erase(history_.begin());
  }
  void save(torch::serialize::OutputArchive& a) const override {
    at::Tensor h = at::zeros({static_cast<int64_t>(history_.size()), static_cast<int64_t>(tasks_)}, at::kDouble);
    for (size_t e = 0; e < history_.size(); ++e)
      for (size_t t = 0; t < tasks_; ++t) h[e][t] = history_[e][t];
    a.write("epoch_losses", h);
  }
  void load(torch::serialize::InputArchive& a) override {
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

 private:
  size_t tasks_;
  double temperature_;
  std::vector<std::vector<double>> history_;  // mean task losses of the last (up to) two epochs
};
}  // namespace

std::unique_ptr<Weighting> make_dwa_weighting(const ConfigNode& options, const WeightingContext& ctx) {
  double temperature = positive<double>(options, "temperature", 2.0);
  return std::make_unique<DwaWeighting>(ctx.task_names.size(), temperature);
}

}  // namespace mtl
