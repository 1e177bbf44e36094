#include "mtl/weighting/famo.h"

#include <ATen/ATen.h>
#include <torch/serialize/archive.h>

#include <cmath>

#include "mtl/config/config_node.h"
#include "mtl/weighting/method_support.h"

namespace mtl {

namespace {
constexpr double kEps = 1e-8;
}  // namespace

FamoOptions FamoOptions::from_config(const ConfigNode& options) {
  double lr = positive<double>(options, "lr", 0.025);
  double gamma = non_negative<double>(options, "gamma", 0.01);
  return FamoOptions().lr(lr).gamma(gamma);
}

Famo::Famo(int64_t tasks, FamoOptions options)
    : lr_(options.lr()), gamma_(options.gamma()), logits_(static_cast<size_t>(tasks), 0.0),
      m_(logits_.size(), 0.0), v_(logits_.size(), 0.0) {
  check_option(lr_ > 0, "FamoOptions", "lr", got("expected a positive number", lr_));
  check_option(gamma_ >= 0, "FamoOptions", "gamma", got("expected a number >= 0", gamma_));
}

std::vector<double> Famo::loss_weights(const std::vector<double>& losses, const StepContext& ctx) {
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

void Famo::after_step(const std::vector<double>& after, const StepContext& ctx) {
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

void Famo::save(torch::serialize::OutputArchive& a) const {
  a.write("logits", at::tensor(logits_, at::kDouble));
  a.write("adam_m", at::tensor(m_, at::kDouble));
  a.write("adam_v", at::tensor(v_, at::kDouble));
  a.write("adam_steps", at::tensor(adam_steps_, at::kLong));
}

void Famo::load(torch::serialize::InputArchive& a) {
  const int64_t T = static_cast<int64_t>(logits_.size());
  logits_ = read_state_vector(a, "logits", T, "famo");
  m_ = read_state_vector(a, "adam_m", T, "famo");
  v_ = read_state_vector(a, "adam_v", T, "famo");
  at::Tensor steps;
  a.read("adam_steps", steps);
  adam_steps_ = steps.item<int64_t>();
}

std::vector<double> Famo::softmax(const StepContext& ctx) const {
  std::vector<double> l = ctx.select(logits_);
  double mx = -INFINITY, sum = 0;
  for (double x : l) mx = std::max(mx, x);
  std::vector<double> z(l.size());
  for (size_t t = 0; t < z.size(); ++t) sum += z[t] = std::exp(l[t] - mx);
  for (double& x : z) x /= sum;
  return z;
}

}  // namespace mtl
