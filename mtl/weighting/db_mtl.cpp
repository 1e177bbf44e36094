// DB-MTL, dual-balancing (Lin et al., 2023): loss-scale balancing by optimising log L_t (gradient g_t / L_t)
// and gradient-magnitude balancing: with h_t an exponential moving average of the log-loss gradients
// (h <- g + beta / k^beta_sigma (h - g) at step k >= 1, h = 0 before the first step, as in LibMTL), the
// update is
//   d = sum_t (max_s |h_s| / |h_t|) h_t.
// The moving averages (T x P, like one more copy of the trunk gradients) and the step count are checkpoint state.
//   weighting: {method: db_mtl, beta: 0.9, beta_sigma: 0.5}
#include <cmath>

#include <torch/serialize/archive.h>

#include "mtl/config/config_node.h"
#include "mtl/weighting/gradient_method.h"
#include "mtl/weighting/methods.h"

namespace mtl {

namespace {
class DbMtlWeighting : public GradientWeighting {
 public:
  DbMtlWeighting(int64_t tasks, double beta, double beta_sigma)
      : tasks_(tasks), beta_(beta), beta_sigma_(beta_sigma) {}

  at::Tensor combine(const at::Tensor& G, const std::vector<double>& losses, const StepContext& ctx) override {
    const int64_t T = G.size(0);
    at::Tensor L = at::tensor(losses, at::kDouble) + 1e-8;
    at::Tensor g = G.to(at::kDouble) / L.unsqueeze(1);  // gradients of log(L_t + 1e-8)
    ++steps_;
    if (!buffer_.defined() || buffer_.size(1) != g.size(1)) buffer_ = at::zeros({tasks_, g.size(1)}, g.options());
    const double rate = beta_ / std::pow(static_cast<double>(steps_), beta_sigma_);
    // Only the present tasks' rows of the moving average advance.
    at::Tensor idx = ctx.tasks.empty() ? at::arange(T, at::kLong) : at::tensor(ctx.tasks, at::kLong);
    at::Tensor rows = g + rate * (buffer_.index_select(0, idx) - g);
    buffer_.index_copy_(0, idx, rows);
    at::Tensor norms = rows.norm(2, 1);
    at::Tensor alpha = norms.max() / (norms + 1e-8);
    last_weights_.assign(T, 0.0);
    for (int64_t t = 0; t < T; ++t) last_weights_[t] = alpha[t].item<double>() / L[t].item<double>();
    return alpha.unsqueeze(0).mm(rows).squeeze(0).to(G.scalar_type());
  }
  void save(torch::serialize::OutputArchive& a) const override {
    a.write("steps", at::tensor(steps_, at::kLong));
    a.write("grad_buffer", buffer_.defined() ? buffer_ : at::zeros({0}, at::kDouble));
  }
  void load(torch::serialize::InputArchive& a) override {
    at::Tensor s, b;
    a.read("steps", s);
    a.read("grad_buffer", b);
    steps_ = s.item<int64_t>();
    buffer_ = b.numel() > 0 ? b : at::Tensor();
  }

 private:
  int64_t tasks_;
  double beta_, beta_sigma_;
  int64_t steps_ = 0;
  at::Tensor buffer_;
};
}  // namespace

std::unique_ptr<Weighting> make_db_mtl_weighting(const ConfigNode& options, const WeightingContext& ctx) {
  double beta = in_range<double>(options, "beta", 0.9, 0.0, 1.0);
  double beta_sigma = non_negative<double>(options, "beta_sigma", 0.5);
  return std::make_unique<DbMtlWeighting>(static_cast<int64_t>(ctx.task_names.size()), beta, beta_sigma);
}

}  // namespace mtl
