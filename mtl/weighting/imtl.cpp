// IMTL, impartial multi-task learning (Liu et al., 2021), both parts of the paper:
//
// IMTL-L (loss part): learned scales s_t; the objective is sum_t [exp(s_t) L_t - s_t], so task t's loss
// weight is exp(s_t) and d/ds_t = exp(s_t) L_t - 1 (set exactly from the full-batch losses each step; the
// optimizer updates s with the model, s_t starts at 0).
//
// IMTL-G (gradient part): weights a with sum 1 such that the combined gradient d = sum_t a_t g_t has equal
// projections onto every task's unit gradient u_t:
//   a_{2..T} = g_1 U^T (D U^T)^+,  a_1 = 1 - sum a_{2..T},  D_t = g_1 - g_t,  U_t = u_1 - u_t.
// (Pseudo-inverse: identical gradients give a = e_1, i.e. d = g_1.) Tasks with a zero gradient have no
// direction to be fair to: they get a_t = 0 and the others are solved for.
//
// `part: both` (the paper's IMTL, default) applies IMTL-G to the scaled gradients exp(s_t) g_t and trains
// the heads on exp(s_t) L_t; `gradient` is IMTL-G alone; `loss` is IMTL-L alone (a loss-based method:
// no per-task gradients, cost of EW).
//   weighting: {method: imtl, part: both}
#include <cmath>

#include <torch/serialize/archive.h>

#include "mtl/config/config_node.h"
#include "mtl/weighting/gradient_method.h"
#include "mtl/weighting/methods.h"

namespace mtl {

namespace {
class ImtlWeighting : public GradientWeighting {
 public:
  ImtlWeighting(size_t tasks, std::string part) : part_(std::move(part)) {
    if (part_ != "gradient")
      scale_ = at::zeros({static_cast<int64_t>(tasks)}, at::kDouble).set_requires_grad(true);
  }

  GradientKind needs() const override {
    return part_ == "loss" ? GradientKind::kWeightedLoss : GradientKind::kSharedTaskGrads;
  }

  std::vector<double> loss_weights(const std::vector<double>& losses, const StepContext& ctx) override {
    std::vector<double> w(losses.size(), 1.0);
    if (!scale_.defined()) return w;
    at::Tensor s = scale_.detach();
    at::Tensor grad = at::zeros_like(s);  // absent tasks: no loss, no regulariser term
    auto sa = s.accessor<double, 1>();
    auto ga = grad.accessor<double, 1>();
    for (size_t i = 0; i < losses.size(); ++i) {
      const int64_t t = ctx.task(i);
      w[i] = std::exp(sa[t]);
      ga[t] = w[i] * losses[i] - 1.0;
    }
    scale_.mutable_grad() = grad;
    last_weights_ = w;
    return w;
  }

  at::Tensor combine(const at::Tensor& G, const std::vector<double>&, const StepContext& ctx) override {
    const int64_t T = G.size(0);
    at::Tensor all = G.to(at::kDouble);
    // exp(s_t): the optimizer has not moved s since loss_weights() this step.
    at::Tensor scales = scale_.defined() ? scale_.detach().exp() : at::ones({T}, at::kDouble);
    if (scale_.defined() && !ctx.tasks.empty()) scales = scales.index_select(0, at::tensor(ctx.tasks, at::kLong));
    all = all * scales.unsqueeze(1);
    at::Tensor norms = all.norm(2, 1);
    std::vector<int64_t> live;
    for (int64_t t = 0; t < T; ++t)
      if (norms[t].item<double>() > 0) live.push_back(t);
    at::Tensor a = at::zeros({T}, at::kDouble);
    if (live.size() == 1) a[live[0]] = 1.0;
    if (live.size() > 1) {
      at::Tensor idx = at::tensor(live, at::kLong);
      at::Tensor g = all.index_select(0, idx);
      at::Tensor u = g / norms.index_select(0, idx).unsqueeze(1);
      at::Tensor D = g[0].unsqueeze(0) - g.slice(0, 1);
      at::Tensor U = u[0].unsqueeze(0) - u.slice(0, 1);
      at::Tensor rest = g[0].unsqueeze(0).mm(U.t()).mm(at::linalg_pinv(D.mm(U.t()))).squeeze(0);
      at::Tensor sub = at::empty({static_cast<int64_t>(live.size())}, at::kDouble);
      sub.slice(0, 1).copy_(rest);
      sub[0] = 1.0 - rest.sum().item<double>();
      a.index_copy_(0, idx, sub);
    }
    at::Tensor w = a * scales;  // effective weights of the unscaled task gradients
    last_weights_.assign(w.data_ptr<double>(), w.data_ptr<double>() + T);
    return weighted_rows(G, w);
  }

  std::vector<at::Tensor> parameters() override {
    if (!scale_.defined()) return {};
    return {scale_};
  }
  void save(torch::serialize::OutputArchive& a) const override {
    if (scale_.defined()) a.write("loss_scale", scale_.detach());
  }
  void load(torch::serialize::InputArchive& a) override {
    if (scale_.defined()) load_learned(a, "loss_scale", scale_, "imtl");
  }

 private:
  std::string part_;
  at::Tensor scale_;  // s_t (IMTL-L), undefined for part: gradient
};
}  // namespace

std::unique_ptr<Weighting> make_imtl_weighting(const ConfigNode& options, const WeightingContext& ctx) {
  std::string part = options.choice("part", std::string("both"), {"both", "gradient", "loss"});
  return std::make_unique<ImtlWeighting>(ctx.task_names.size(), part);
}

}  // namespace mtl
