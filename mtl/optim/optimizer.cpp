#include "mtl/optim/optimizer.h"

#include <cmath>
#include <set>

#include "mtl/config/config_node.h"

namespace mtl {

namespace {

Regularisation parse_regularisation(const ConfigNode& n, const Regularisation& inherited) {
  Regularisation r = inherited;
  r.l1 = non_negative<double>(n, "l1", r.l1);
  r.l2 = non_negative<double>(n, "l2", r.l2);
  r.clip_grad_value = non_negative<double>(n, "clip_grad_value", r.clip_grad_value);
  r.clip_grad_norm = non_negative<double>(n, "clip_grad_norm", r.clip_grad_norm);
  r.max_norm = non_negative<double>(n, "max_norm", r.max_norm);
  return r;
}

}  // namespace

OptimizerOptions parse_optimizer_options(const ConfigNode& n) {
  OptimizerOptions o;
  o.where = n.where();
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
  o.decay_bias_and_norm = n.get<bool>("decay_bias_and_norm", o.decay_bias_and_norm);
  o.backbone_lr_scale = non_negative<double>(n, "backbone_lr_scale", o.backbone_lr_scale);
  o.layer_lr_decay = in_range<double>(n, "layer_lr_decay", o.layer_lr_decay, 0.0, 1.0);
  o.regularisation = parse_regularisation(n, Regularisation{});
  Regularisation inherited = o.regularisation;
  inherited.clip_grad_norm = 0.0;  // the top-level one is global, not per group
  std::set<std::string> names;
  std::vector<ConfigNode> groups = n.components("groups");
  for (size_t i = 0; i < groups.size(); ++i) {
    const ConfigNode& g = groups[i];
    ParamGroupOptions pg;
    pg.where = g.where();
    pg.name = g.get<std::string>("name", "group" + std::to_string(i + 1));
    g.check(!pg.name.empty() && names.insert(pg.name).second, "name", "expected a unique group name");
    g.check(pg.name != "default" && pg.name != "weighting" && pg.name.rfind("backbone", 0) != 0, "name",
            "'default', 'weighting' and names starting with 'backbone' are the implicit groups' names");
    pg.params = g.require<std::vector<std::string>>("params");
    g.check(!pg.params.empty(), "params", "expected a list of parameter-name patterns, e.g. [heads.left]");
    for (const auto& p : pg.params) g.check(!p.empty(), "params", "expected non-empty parameter-name patterns");
    if (g.has("lr")) {
      g.check(!g.has("lr_scale"), "lr_scale", "give either lr or lr_scale, not both");
      pg.lr = positive<double>(g, "lr", o.lr);
    } else {
      pg.lr = o.lr * non_negative<double>(g, "lr_scale", 1.0);
    }
    pg.weight_decay = non_negative<double>(g, "weight_decay", o.weight_decay);
    pg.regularisation = parse_regularisation(g, inherited);
    if (g.has("scheduler")) pg.scheduler = parse_scheduler_options(g.component("scheduler", "constant"));
    o.groups.push_back(std::move(pg));
  }
  return o;
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimizerOptions& o,
                                                        const std::vector<at::Tensor>& params) {
  return make_optimizer(o, {params}, {{o.lr, o.weight_decay}});
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimizerOptions& o,
                                                        std::vector<std::vector<at::Tensor>> groups,
                                                        const std::vector<std::pair<double, double>>& lr_and_decay) {
  TORCH_CHECK(groups.size() == lr_and_decay.size(), "one rate and decay per group");
  namespace to = torch::optim;
  auto options = [&](double lr, double decay) -> std::unique_ptr<to::OptimizerOptions> {
    if (o.type == "sgd")
      return std::make_unique<to::SGDOptions>(to::SGDOptions(lr).momentum(o.momentum).nesterov(o.nesterov).weight_decay(decay));
    if (o.type == "adam")
      return std::make_unique<to::AdamOptions>(to::AdamOptions(lr).betas({o.beta1, o.beta2}).eps(o.eps).weight_decay(decay));
    return std::make_unique<to::AdamWOptions>(to::AdamWOptions(lr).betas({o.beta1, o.beta2}).eps(o.eps).weight_decay(decay));
  };
  std::vector<to::OptimizerParamGroup> torch_groups;
  for (size_t g = 0; g < groups.size(); ++g)
    torch_groups.emplace_back(std::move(groups[g]), options(lr_and_decay[g].first, lr_and_decay[g].second));
  auto defaults = options(o.lr, o.weight_decay);
  if (o.type == "sgd") return std::make_unique<to::SGD>(std::move(torch_groups), static_cast<to::SGDOptions&>(*defaults));
  if (o.type == "adam") return std::make_unique<to::Adam>(std::move(torch_groups), static_cast<to::AdamOptions&>(*defaults));
  return std::make_unique<to::AdamW>(std::move(torch_groups), static_cast<to::AdamWOptions&>(*defaults));
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

}  // namespace mtl
