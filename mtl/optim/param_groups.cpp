#include "mtl/optim/param_groups.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/optim/sgd.h>

#include <cmath>
#include <unordered_map>

#include "mtl/core/error.h"
#include "mtl/core/name_pattern.h"

namespace mtl {

namespace {

// Out of place: autograd may hand the same tensor to several parameters as their gradient.
void set_grad(at::Tensor& p, at::Tensor g) { p.mutable_grad() = std::move(g); }

}  // namespace

double clip_gradient_norm(const std::vector<at::Tensor>& params, double max_norm) {
  double squares = 0.0;
  for (const auto& p : params)
    if (p.grad().defined()) squares += p.grad().to(at::kDouble).pow(2).sum().item<double>();
  const double norm = std::sqrt(squares);
  if (max_norm > 0 && norm > max_norm) {
    const double scale = max_norm / (norm + 1e-6);
    for (auto p : params)
      if (p.grad().defined()) set_grad(p, p.grad() * scale);
  }
  return norm;
}

ParamGroups::ParamGroups(const OptimizerOptions& o, const SchedulerOptions& scheduler,
                         const NamedParameters& model_params,
                         const std::vector<std::vector<std::string>>& blocks,
                         const std::vector<at::Tensor>& weighting_params, const std::vector<std::string>& trunk)
    : options_(o), scheduler_(scheduler) {
  Regularisation inherited = o.regularisation;
  inherited.clip_grad_norm = 0.0;
  // The run's schedule, for a group with another base rate: the floor scales with the rate.
  auto scaled_schedule = [&](double lr) {
    SchedulerOptions s = scheduler;
    s.min_lr = scheduler.min_lr * lr / o.lr;
    return s;
  };
  struct Candidate {
    ResolvedParamGroup group;
    std::vector<std::string> patterns;
    std::string where;  // explicit groups only
  };
  std::vector<Candidate> candidates;
  for (const auto& g : o.groups) {
    Candidate c;
    c.group.name = g.name;
    c.group.lr = g.lr;
    c.group.weight_decay = g.weight_decay;
    c.group.regularisation = g.regularisation;
    c.group.scheduler = g.scheduler ? *g.scheduler : scaled_schedule(g.lr);
    c.patterns = g.params;
    c.where = g.where;
    candidates.push_back(std::move(c));
  }
  auto implicit = [&](std::string name, std::vector<std::string> patterns, double lr) {
    Candidate c;
    c.group.name = std::move(name);
    c.group.lr = lr;
    c.group.weight_decay = o.weight_decay;
    c.group.regularisation = inherited;
    c.group.scheduler = scaled_schedule(lr);
    c.patterns = std::move(patterns);
    candidates.push_back(std::move(c));
  };
  if (o.layer_lr_decay < 1.0) {
    const size_t K = blocks.size();
    for (size_t i = 0; i < K; ++i)
      implicit(join(blocks[i], ","), blocks[i], o.lr * o.backbone_lr_scale * std::pow(o.layer_lr_decay, double(K - i)));
  }
  if (o.layer_lr_decay < 1.0 || o.backbone_lr_scale != 1.0) implicit("backbone", trunk, o.lr * o.backbone_lr_scale);
  implicit("default", {"*"}, o.lr);

  for (const auto& [name, p] : model_params) {
    for (auto& c : candidates) {
      if (!name_matches_any(c.patterns, name)) continue;
      c.group.names.push_back(name);
      c.group.params.push_back(p);
      c.group.decayed.push_back(c.group.weight_decay > 0 && (o.decay_bias_and_norm || p.dim() > 1));
      break;
    }
  }
  for (auto& c : candidates) {
    if (c.group.params.empty()) {
      if (!c.where.empty())
        throw Error(c.where, "parameter group '" + c.group.name + "': patterns [" + join(c.patterns, ", ") +
                                 "] select no parameter that an earlier group did not take (names look like '" +
                                 (model_params.empty() ? std::string("?") : model_params.front().first) +
                                 "'; `mtl inspect` lists them)");
      continue;
    }
    groups_.push_back(std::move(c.group));
  }
  if (!weighting_params.empty()) {
    ResolvedParamGroup w;
    w.name = "weighting";
    w.lr = o.lr;
    w.scheduler = scheduler;
    w.params = weighting_params;
    for (size_t k = 0; k < weighting_params.size(); ++k) w.names.push_back("weighting." + std::to_string(k));
    w.decayed.assign(weighting_params.size(), false);
    groups_.push_back(std::move(w));
  }

  build_optimizer();
}

void ParamGroups::build_optimizer() {
  std::vector<std::vector<at::Tensor>> torch_groups;
  std::vector<std::pair<double, double>> settings;
  for (size_t g = 0; g < groups_.size(); ++g) {
    const auto& group = groups_[g];
    std::vector<at::Tensor> decayed, plain;
    for (size_t k = 0; k < group.params.size(); ++k) (group.decayed[k] ? decayed : plain).push_back(group.params[k]);
    if (!decayed.empty()) {
      torch_groups.push_back(std::move(decayed));
      settings.emplace_back(group.lr, group.weight_decay);
      torch_group_owner_.push_back(g);
      torch_group_decay_.push_back(group.weight_decay);
    }
    if (!plain.empty()) {
      torch_groups.push_back(std::move(plain));
      settings.emplace_back(group.lr, 0.0);
      torch_group_owner_.push_back(g);
      torch_group_decay_.push_back(0.0);
    }
  }
  optimizer_ = make_optimizer(options_, std::move(torch_groups), settings);
}
ParamGroups ParamGroups::twin(const std::function<at::Tensor(const at::Tensor&)>& alias) const {
  ParamGroups out;
  out.options_ = options_;
  out.scheduler_ = scheduler_;
  out.groups_ = groups_;
  for (auto& g : out.groups_)
    for (auto& p : g.params) p = alias(p);
  out.steps_per_epoch_ = steps_per_epoch_;
  out.total_steps_ = total_steps_;
  out.build_optimizer();
  return out;
}

void ParamGroups::scale_step(double lr_factor, double momentum, double decay_factor) {
  TORCH_CHECK(options_.type == "sgd", "scale_step: SGD only");
  auto& torch_groups = optimizer_->param_groups();
  for (size_t t = 0; t < torch_groups.size(); ++t) {
    auto& o = static_cast<torch::optim::SGDOptions&>(torch_groups[t].options());
    o.lr(o.lr() * lr_factor);
    o.momentum(momentum);
    o.weight_decay(torch_group_decay_[t] * decay_factor);
  }
}

std::vector<double> ParamGroups::parameter_rates(const std::vector<at::Tensor>& params) const {
  std::unordered_map<const void*, double> rate;
  for (auto& g : optimizer_->param_groups())
    for (const auto& p : g.params()) rate[p.unsafeGetTensorImpl()] = g.options().get_lr();
  std::vector<double> out;
  for (const auto& p : params) {
    auto it = p.defined() ? rate.find(p.unsafeGetTensorImpl()) : rate.end();
    out.push_back(it == rate.end() ? 0.0 : it->second);
  }
  return out;
}


double ParamGroups::set_step(int64_t step, int64_t steps_per_epoch, int64_t total_steps) {
  std::vector<double> lr(groups_.size());
  for (size_t g = 0; g < groups_.size(); ++g)
    lr[g] = scheduled_lr(groups_[g].scheduler, groups_[g].lr, step, steps_per_epoch, total_steps);
  auto& torch_groups = optimizer_->param_groups();
  for (size_t t = 0; t < torch_groups.size(); ++t) torch_groups[t].options().set_lr(lr[torch_group_owner_[t]]);
  return scheduled_lr(scheduler_, options_.lr, step, steps_per_epoch, total_steps);
}

double ParamGroups::before_step() {
  torch::NoGradGuard no_grad;
  double penalty = 0.0;
  std::vector<at::Tensor> all;
  for (auto& g : groups_) {
    const Regularisation& r = g.regularisation;
    std::vector<at::Tensor> with_grad;
    for (auto& p : g.params)
      if (p.grad().defined()) with_grad.push_back(p);
    for (auto& p : with_grad) {
      at::Tensor grad = p.grad();
      if (r.l2 > 0) {
        penalty += r.l2 * p.to(at::kDouble).pow(2).sum().item<double>();
        grad = grad + p * (2.0 * r.l2);
      }
      if (r.l1 > 0) {
        penalty += r.l1 * p.to(at::kDouble).abs().sum().item<double>();
        grad = grad + p.sign() * r.l1;
      }
      if (r.clip_grad_value > 0) grad = grad.clamp(-r.clip_grad_value, r.clip_grad_value);
      if (!grad.is_same(p.grad())) set_grad(p, grad);
    }
    if (r.clip_grad_norm > 0) clip_gradient_norm(with_grad, r.clip_grad_norm);
    all.insert(all.end(), with_grad.begin(), with_grad.end());
  }
  if (options_.regularisation.clip_grad_norm > 0) clip_gradient_norm(all, options_.regularisation.clip_grad_norm);
  return penalty;
}

void ParamGroups::after_step() {
  torch::NoGradGuard no_grad;
  for (auto& g : groups_) {
    if (g.regularisation.max_norm <= 0) continue;
    for (auto& p : g.params)
      if (p.requires_grad() && p.dim() >= 2) p.renorm_(2, 0, g.regularisation.max_norm);
  }
}

}  // namespace mtl
