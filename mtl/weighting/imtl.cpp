#include "mtl/weighting/imtl.h"

#include <ATen/ATen.h>
#include <torch/serialize/archive.h>

#include <cmath>

#include "mtl/config/config_node.h"
#include "mtl/weighting/method_support.h"

namespace mtl {

namespace {
// IMTL-G's weights (sum 1, equal projections on the unit gradients) of the rows of g; zero rows get 0.
at::Tensor equal_projection_weights(const at::Tensor& all) {
  const int64_t T = all.size(0);
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
  return a;
}
}  // namespace

ImtlOptions ImtlOptions::from_config(const ConfigNode& options) {
  return ImtlOptions().part(options.choice("part", std::string("both"), {"both", "gradient", "loss"}));
}

Imtl::Imtl(int64_t tasks, ImtlOptions options) : part_(options.part()) {
  check_option(part_ == "both" || part_ == "gradient" || part_ == "loss", "ImtlOptions", "part",
               got("expected 'both', 'gradient' or 'loss'", part_));
  if (part_ != "gradient") scale_ = at::zeros({tasks}, at::kDouble).set_requires_grad(true);
}

std::vector<double> Imtl::loss_weights(const std::vector<double>& losses, const StepContext& ctx) {
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

at::Tensor Imtl::combine(const at::Tensor& G, const std::vector<double>&, const StepContext& ctx) {
  const int64_t T = G.size(0);
  // exp(s_t): the optimizer has not moved s since loss_weights() this step.
  at::Tensor scales = scale_.defined() ? scale_.detach().exp() : at::ones({T}, at::kDouble);
  if (scale_.defined() && !ctx.tasks.empty()) scales = scales.index_select(0, at::tensor(ctx.tasks, at::kLong));
  at::Tensor a = equal_projection_weights(G.to(at::kDouble) * scales.unsqueeze(1));
  at::Tensor w = a * scales;  // effective weights of the unscaled task gradients
  set_last_weights(w);
  return weighted_rows(G, w);
}

std::vector<at::Tensor> Imtl::parameters() {
  if (!scale_.defined()) return {};
  return {scale_};
}

void Imtl::save(torch::serialize::OutputArchive& a) const {
  if (scale_.defined()) a.write("loss_scale", scale_.detach());
}

void Imtl::load(torch::serialize::InputArchive& a) {
  if (scale_.defined()) load_learned(a, "loss_scale", scale_, "imtl");
}

}  // namespace mtl
