#include "mtl/optim/optimizer.h"

#include <cmath>

#include "mtl/config/config_node.h"

namespace mtl {

OptimizerOptions parse_optimizer_options(const ConfigNode& n) {
  OptimizerOptions o;
  o.type = n.choice("type", o.type, {"sgd", "adam", "adamw"});
  if (o.type == "adamw") o.weight_decay = 0.01;
  if (o.type != "sgd") o.lr = 0.001;
  o.lr = positive<double>(n, "lr", o.lr);
  o.weight_decay = non_negative<double>(n, "weight_decay", o.weight_decay);
  if (o.type == "sgd") {
    o.momentum = in_range<double>(n, "momentum", o.momentum, 0.0, 1.0);
    o.nesterov = n.get<bool>("nesterov", o.nesterov);
    n.check(!o.nesterov || o.momentum > 0, "nesterov", "nesterov momentum needs momentum > 0");
  } else {
    std::vector<double> betas = n.get<std::vector<double>>("betas", {o.beta1, o.beta2});
    n.check(betas.size() == 2 && betas[0] >= 0 && betas[0] < 1 && betas[1] >= 0 && betas[1] < 1, "betas",
            "expected two values in [0, 1), e.g. [0.9, 0.999]");
    o.beta1 = betas[0];
    o.beta2 = betas[1];
    o.eps = positive<double>(n, "eps", o.eps);
  }
  return o;
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimizerOptions& o,
                                                        const std::vector<at::Tensor>& params) {
  if (o.type == "sgd") {
    return std::make_unique<torch::optim::SGD>(
        params, torch::optim::SGDOptions(o.lr).momentum(o.momentum).nesterov(o.nesterov).weight_decay(
                    o.weight_decay));
  }
  if (o.type == "adam") {
    return std::make_unique<torch::optim::Adam>(
        params, torch::optim::AdamOptions(o.lr).betas({o.beta1, o.beta2}).eps(o.eps).weight_decay(
                    o.weight_decay));
  }
  return std::make_unique<torch::optim::AdamW>(
      params,
      torch::optim::AdamWOptions(o.lr).betas({o.beta1, o.beta2}).eps(o.eps).weight_decay(o.weight_decay));
}

SchedulerOptions parse_scheduler_options(const ConfigNode& n) {
  SchedulerOptions s;
  s.type = n.choice("type", s.type, {"constant", "step", "multistep", "cosine", "linear"});
  s.warmup_steps = non_negative<int64_t>(n, "warmup_steps", s.warmup_steps);
  s.warmup_start_factor = in_range<double>(n, "warmup_start_factor", s.warmup_start_factor, 0.0, 1.0);
  if (s.type == "step") s.step_size = positive<int64_t>(n, "step_size", s.step_size);
  if (s.type == "multistep") {
    s.milestones = n.require<std::vector<int64_t>>("milestones");
    for (size_t i = 0; i < s.milestones.size(); ++i)
      n.check(s.milestones[i] > 0 && (i == 0 || s.milestones[i] > s.milestones[i - 1]), "milestones",
              "expected increasing positive epoch numbers");
  }
  if (s.type == "step" || s.type == "multistep") s.gamma = in_range<double>(n, "gamma", s.gamma, 0.0, 1.0);
  if (s.type == "cosine" || s.type == "linear") s.min_lr = non_negative<double>(n, "min_lr", s.min_lr);
  return s;
}

double scheduled_lr(const SchedulerOptions& s, double base, int64_t step, int64_t steps_per_epoch,
                    int64_t total_steps) {
  if (step < s.warmup_steps) {
    double f = s.warmup_start_factor + (1.0 - s.warmup_start_factor) * double(step) / double(s.warmup_steps);
    return base * f;
  }
  int64_t epoch = steps_per_epoch > 0 ? step / steps_per_epoch : 0;
  if (s.type == "step") return base * std::pow(s.gamma, double(epoch / s.step_size));
  if (s.type == "multistep") {
    int64_t passed = 0;
    for (int64_t m : s.milestones)
      if (epoch >= m) ++passed;
    return base * std::pow(s.gamma, double(passed));
  }
  if (s.type == "cosine" || s.type == "linear") {
    int64_t span = std::max<int64_t>(1, total_steps - s.warmup_steps);
    double p = std::min(1.0, double(step - s.warmup_steps) / double(span));
    double f = s.type == "cosine" ? 0.5 * (1.0 + std::cos(M_PI * p)) : 1.0 - p;
    return s.min_lr + (base - s.min_lr) * f;
  }
  return base;
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

}  // namespace mtl
