// GradNorm (Chen et al., ICML 2018): learned task weights w (start at 1) that equalise the tasks' gradient
// norms on a chosen set W of shared weights, pushed towards each task's relative training rate:
//   G_t = w_t |grad_W L_t|,  G = mean_t G_t,  r_t = (L_t / L_t(0)) / mean_s (L_s / L_s(0)),
//   L_grad = sum_t |G_t - G r_t^alpha|   (the target G r_t^alpha held constant, as in the paper),
// so dL_grad/dw_t = sign(G_t - target_t) |grad_W L_t|. The optimizer updates w with the model; before each
// step w is renormalised to sum to T (clamped at 1e-6 first). The model's gradient is that of
// sum_t w_t L_t (shared and heads). L_t(0) are the full-batch losses of the first step.
//   weighting: {method: gradnorm, alpha: 1.5, layer: last}
//   layer: last  W = the last shared layer (the trunk's last module with parameters; the paper's choice)
//          all   W = every trainable shared parameter (LibMTL's choice)
// The norms come from the engine's full-batch T x P gradient matrix, so every thread count gives the same
// weights. w and L(0) are checkpoint state.
#include <cmath>

#include <torch/serialize/archive.h>

#include "mtl/config/config_node.h"
#include "mtl/weighting/gradient_method.h"
#include "mtl/weighting/methods.h"

namespace mtl {

namespace {
class GradNormWeighting : public GradientWeighting {
 public:
  GradNormWeighting(size_t tasks, double alpha, std::string layer)
      : alpha_(alpha), layer_(std::move(layer)),
        w_(at::ones({static_cast<int64_t>(tasks)}, at::kDouble).set_requires_grad(true)) {}

  void set_shared_parameters(const std::vector<SharedParameter>& shared) override {
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

  std::vector<double> loss_weights(const std::vector<double>& losses, const StepContext& ctx) override {
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

  at::Tensor combine(const at::Tensor& G, const std::vector<double>& losses, const StepContext& ctx) override {
    const int64_t T = G.size(0);
    at::Tensor cols = length_ > 0 && begin_ + length_ <= G.size(1) ? G.narrow(1, begin_, length_) : G;
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
    last_weights_.assign(w.data_ptr<double>(), w.data_ptr<double>() + T);
    return weighted_rows(G, w);
  }

  std::vector<at::Tensor> parameters() override { return {w_}; }
  void save(torch::serialize::OutputArchive& a) const override {
    a.write("weights", w_.detach());
    a.write("initial_losses", at::tensor(initial_.empty() ? std::vector<double>{} : initial_, at::kDouble));
  }
  void load(torch::serialize::InputArchive& a) override {
    load_learned(a, "weights", w_, "gradnorm");
    at::Tensor l0;
    a.read("initial_losses", l0);  // empty before the first step
    TORCH_CHECK(l0.numel() == 0 || l0.numel() == w_.numel(), "checkpoint gradnorm state 'initial_losses' has ",
                l0.numel(), " values, the config needs ", w_.numel());
    l0 = l0.to(at::kDouble).contiguous();
    initial_.assign(l0.data_ptr<double>(), l0.data_ptr<double>() + l0.numel());
  }

 private:
  double alpha_;
  std::string layer_;
  at::Tensor w_;                  // learned task weights
  std::vector<double> initial_;   // L_t(0)
  int64_t begin_ = 0, length_ = 0;  // columns of W in the T x P matrix (length 0: all)
};
}  // namespace

std::unique_ptr<Weighting> make_gradnorm_weighting(const ConfigNode& options, const WeightingContext& ctx) {
  double alpha = non_negative<double>(options, "alpha", 1.5);
  std::string layer = options.choice("layer", std::string("last"), {"last", "all"});
  return std::make_unique<GradNormWeighting>(ctx.task_names.size(), alpha, layer);
}

}  // namespace mtl
