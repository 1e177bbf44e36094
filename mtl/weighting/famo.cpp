// FAMO, fast adaptive multitask optimization (Liu et al., NeurIPS 2023): loss-based, O(1) extra cost per
// step besides one gradient-free forward pass.
//   Task logits xi (start at 0), z = softmax(xi), D_t = L_t - min_t + 1e-8 (min_t = 0: losses are >= 0).
//   Objective sum_t z_t log D_t / c with c = sum_t z_t / D_t held constant, so task t's loss weight is
//   w_t = (z_t / D_t) / sum_s (z_s / D_s)   (the weights sum to 1, as in the paper).
//   After the optimizer step the trainer evaluates the same batch again; with
//   delta_t = log D_t(before) - log D_t(after), the logits take one Adam step (betas 0.9/0.999, eps 1e-8,
//   L2 weight decay `gamma` added to the gradient, as torch.optim.Adam(weight_decay=gamma) does) along
//   J_softmax(xi)^T delta = z * (delta - z . delta).
//   weighting: {method: famo, lr: 0.025, gamma: 0.01}   # the authors' defaults (w_lr, gamma)
// The losses are full-batch means reduced over threads, so any thread count gives the same weights. The
// logits and Adam moments are checkpoint state. (The authors also clip the model's gradient norm to 1;
// mtl leaves that to the optimizer settings.)
#include <cmath>

#include <torch/serialize/archive.h>

#include "mtl/config/config_node.h"
#include "mtl/weighting/methods.h"

namespace mtl {

namespace {
constexpr double kEps = 1e-8;

class FamoWeighting : public Weighting {
 public:
  FamoWeighting(size_t tasks, double lr, double gamma)
      : lr_(lr), gamma_(gamma), logits_(tasks, 0.0), m_(tasks, 0.0), v_(tasks, 0.0) {}

  std::vector<double> loss_weights(const std::vector<double>& losses, const StepContext& ctx) override {
    const size_t T = losses.size();
    std::vector<double> z = softmax(ctx);
    std::vector<double> w(T);
    double c = 0;
    for (size_t t = 0; t < T; ++t) c += z[t] / (losses[t] + kEps);
    for (size_t t = 0; t < T; ++t) w[t] = z[t] / (losses[t] + kEps) / c;
    before_ = losses;
    before_tasks_ = ctx.tasks;
    last_weights_ = w;
    return w;
  }

  bool needs_losses_after_step() const override { return true; }

  void after_step(const std::vector<double>& after, const StepContext& ctx) override {
    // Only the tasks present in this step learn from it (their logits, renormalised among themselves).
    const size_t T = after.size();
    if (before_.size() != T || ctx.tasks != before_tasks_) return;
    std::vector<double> z = softmax(ctx);
    std::vector<double> delta(T);
    double zd = 0;
    for (size_t t = 0; t < T; ++t) {
      delta[t] = std::log(before_[t] + kEps) - std::log(after[t] + kEps);
      zd += z[t] * delta[t];
    }
    ++adam_steps_;
    const double b1 = 0.9, b2 = 0.999;
    const double c1 = 1.0 - std::pow(b1, static_cast<double>(adam_steps_));
    const double c2 = 1.0 - std::pow(b2, static_cast<double>(adam_steps_));
    for (size_t i = 0; i < T; ++i) {
      const size_t t = static_cast<size_t>(ctx.task(i));
      double g = z[i] * (delta[i] - zd) + gamma_ * logits_[t];
      m_[t] = b1 * m_[t] + (1 - b1) * g;
      v_[t] = b2 * v_[t] + (1 - b2) * g * g;
      logits_[t] -= lr_ * (m_[t] / c1) / (std::sqrt(v_[t] / c2) + kEps);
    }
  }

  void save(torch::serialize::OutputArchive& a) const override {
    a.write("logits", at::tensor(logits_, at::kDouble));
    a.write("adam_m", at::tensor(m_, at::kDouble));
    a.write("adam_v", at::tensor(v_, at::kDouble));
    a.write("adam_steps", at::tensor(adam_steps_, at::kLong));
  }
  void load(torch::serialize::InputArchive& a) override {
    const int64_t T = static_cast<int64_t>(logits_.size());
    logits_ = read_state_vector(a, "logits", T, "famo");
    m_ = read_state_vector(a, "adam_m", T, "famo");
    v_ = read_state_vector(a, "adam_v", T, "famo");
    at::Tensor steps;
    a.read("adam_steps", steps);
    adam_steps_ = steps.item<int64_t>();
  }

 private:
  // Softmax of the logits of the tasks passed in this step.
  std::vector<double> softmax(const StepContext& ctx) const {
    std::vector<double> l = ctx.select(logits_);
    double mx = -INFINITY, sum = 0;
    for (double x : l) mx = std::max(mx, x);
    std::vector<double> z(l.size());
    for (size_t t = 0; t < z.size(); ++t) sum += z[t] = std::exp(l[t] - mx);
    for (double& x : z) x /= sum;
    return z;
  }

  double lr_, gamma_;
  std::vector<double> logits_, m_, v_;
  int64_t adam_steps_ = 0;
  std::vector<double> before_;  // this step's losses before the update
  std::vector<int64_t> before_tasks_;
};
}  // namespace

std::unique_ptr<Weighting> make_famo_weighting(const ConfigNode& options, const WeightingContext& ctx) {
  double lr = positive<double>(options, "lr", 0.025);
  double gamma = non_negative<double>(options, "gamma", 0.01);
  return std::make_unique<FamoWeighting>(ctx.task_names.size(), lr, gamma);
}

}  // namespace mtl
