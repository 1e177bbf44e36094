#include "mtl/weighting/gradnorm.h"

#include <ATen/ATen.h>
#include <torch/serialize/archive.h>

#include <cmath>

#include "mtl/config/config_node.h"
#include "mtl/weighting/method_support.h"

namespace mtl {

GradNormOptions GradNormOptions::from_config(const ConfigNode& options) {
  double alpha = non_negative<double>(options, "alpha", 1.5);
  std::string layer = options.choice("layer", std::string("last"), {"last", "all"});
  return GradNormOptions().alpha(alpha).layer(layer);
}

GradNorm::GradNorm(int64_t tasks, GradNormOptions options)
    : alpha_(options.alpha()), layer_(options.layer()),
      w_(at::ones({tasks}, at::kDouble).set_requires_grad(true)) {
  check_option(alpha_ >= 0, "GradNormOptions", "alpha", got("expected a number >= 0", alpha_));
  check_option(layer_ == "last" || layer_ == "all", "GradNormOptions", "layer",
               got("expected 'last' or 'all'", layer_));
}

void GradNorm::set_shared_parameters(const std::vector<SharedParameter>& shared) {
  begin_ = 0;
  int64_t total = 0;
  for (const auto& p : shared) total += p.numel;
  length_ = total;
  if (layer_ != "last" || shared.empty()) return;
  auto module_of = [](const std::string& name) {
    auto dot = name.rfind('.');
    return dot == std::string::npos ? std::string() : name.substr(0, dot);
  };
  const std::string last = module_of(shared.back().name);
  length_ = 0;
  for (size_t k = shared.size(); k-- > 0 && module_of(shared[k].name) == last;) length_ += shared[k].numel;
  begin_ = total - length_;
}

std::vector<double> GradNorm::loss_weights(const std::vector<double>& losses, const StepContext& ctx) {
  const int64_t T = w_.numel();
  {
    at::NoGradGuard no_grad;
    at::Tensor v = w_.detach().clamp_min(1e-6);
    w_.copy_(v * (static_cast<double>(T) / v.sum().item<double>()));
  }
  // L_t(0): each task's loss at the first step that had it.
  if (initial_.empty()) initial_.assign(static_cast<size_t>(T), std::nan(""));
  for (size_t i = 0; i < losses.size(); ++i)
    if (std::isnan(initial_[ctx.task(i)])) initial_[ctx.task(i)] = losses[i];
  at::Tensor w = w_.detach().contiguous();
  last_weights_ = ctx.select(std::vector<double>(w.data_ptr<double>(), w.data_ptr<double>() + T));
  return last_weights_;
}

at::Tensor GradNorm::combine(const at::Tensor& G, const std::vector<double>& losses, const StepContext& ctx) {
  const int64_t T = G.size(0);
  // Representation space: W is the representation itself (every column).
  const bool layer = space() == GradientSpace::kParameters && length_ > 0 && begin_ + length_ <= G.size(1);
  at::Tensor cols = layer ? G.narrow(1, begin_, length_) : G;
  at::Tensor n = cols.to(at::kDouble).norm(2, 1);
  at::Tensor idx = ctx.tasks.empty() ? at::arange(T, at::kLong) : at::tensor(ctx.tasks, at::kLong);
  at::Tensor w = w_.detach().index_select(0, idx);
  at::Tensor Gt = w * n;
  at::Tensor ratio = at::empty({T}, at::kDouble);
  for (int64_t i = 0; i < T; ++i) {
    double l0 = static_cast<size_t>(ctx.task(i)) < initial_.size() ? initial_[ctx.task(i)] : std::nan("");
    ratio[i] = losses[i] / std::max(std::isnan(l0) ? losses[i] : l0, 1e-12);
  }
  at::Tensor r = ratio / ratio.mean().clamp_min(1e-12);
  at::Tensor target = Gt.mean() * r.pow(alpha_);
  // Only the present tasks' weights move this step.
  w_.mutable_grad() = at::zeros_like(w_.detach()).index_copy_(0, idx, at::sign(Gt - target) * n);
  set_last_weights(w);
  return weighted_rows(G, w);
}

void GradNorm::save(torch::serialize::OutputArchive& a) const {
  a.write("weights", w_.detach());
  a.write("initial_losses", at::tensor(initial_.empty() ? std::vector<double>{} : initial_, at::kDouble));
}

void GradNorm::load(torch::serialize::InputArchive& a) {
  load_learned(a, "weights", w_, "gradnorm");
  at::Tensor l0;
  a.read("initial_losses", l0);  // empty before the first step
  TORCH_CHECK(l0.numel() == 0 || l0.numel() == w_.numel(), "checkpoint gradnorm state 'initial_losses' has ",
              l0.numel(), " values, the config needs ", w_.numel());
  l0 = l0.to(at::kDouble).contiguous();
  initial_.assign(l0.data_ptr<double>(), l0.data_ptr<double>() + l0.numel());
}

}  // namespace mtl
