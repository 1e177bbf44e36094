#include "mtl/weighting/db_mtl.h"

#include <ATen/ATen.h>
#include <torch/serialize/archive.h>

#include <cmath>

#include "mtl/config/config_node.h"
#include "mtl/weighting/method_support.h"

namespace mtl {

DbMtlOptions DbMtlOptions::from_config(const ConfigNode& options) {
  double beta = in_range<double>(options, "beta", 0.9, 0.0, 1.0);
  return DbMtlOptions().beta(beta).beta_sigma(non_negative<double>(options, "beta_sigma", 0.5));
}

DbMtl::DbMtl(int64_t tasks, DbMtlOptions options)
    : tasks_(tasks), beta_(options.beta()), beta_sigma_(options.beta_sigma()) {
  check_option(beta_ >= 0 && beta_ <= 1, "DbMtlOptions", "beta", got("expected a value in [0, 1]", beta_));
  check_option(beta_sigma_ >= 0, "DbMtlOptions", "beta_sigma", got("expected a number >= 0", beta_sigma_));
}

at::Tensor DbMtl::combine(const at::Tensor& G, const std::vector<double>& losses, const StepContext& ctx) {
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
  at::Tensor d = alpha.unsqueeze(0).mm(rows).squeeze(0);
  set_last_weights(least_squares_weights(G, d));
  return d.to(G.scalar_type());
}

std::string DbMtl::representation_space_refusal() const {
  if (beta_ == 0) return "";
  return "db_mtl's moving average (beta " + std::to_string(beta_) +
         ") adds up gradient coordinates across steps, and representation gradients belong to each batch's own "
         "examples (use space: parameters, or beta: 0)";
}

void DbMtl::save(torch::serialize::OutputArchive& a) const {
  a.write("steps", at::tensor(steps_, at::kLong));
  a.write("grad_buffer", buffer_.defined() ? buffer_ : at::zeros({0}, at::kDouble));
}

void DbMtl::load(torch::serialize::InputArchive& a) {
  at::Tensor s, b;
  a.read("steps", s);
  a.read("grad_buffer", b);
  steps_ = s.item<int64_t>();
  buffer_ = b.numel() > 0 ? b : at::Tensor();
}

}  // namespace mtl
