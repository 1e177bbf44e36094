#include "mtl/weighting/weighting.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "mtl/core/error.h"

namespace mtl {

at::Tensor Weighting::combine(const at::Tensor& task_grads, const std::vector<double>& losses,
                              const StepContext& ctx) {
  TORCH_CHECK(false, "this weighting strategy does not combine gradients (needs() = kWeightedLoss)");
}

std::vector<double> StepContext::select(const std::vector<double>& all) const {
  if (tasks.empty()) return all;
  std::vector<double> out;
  out.reserve(tasks.size());
  for (int64_t t : tasks) out.push_back(all.at(static_cast<size_t>(t)));
  return out;
}

std::vector<int64_t> subset_of(const std::vector<bool>& present) {
  std::vector<int64_t> out;
  bool all = true;
  for (size_t t = 0; t < present.size(); ++t) {
    if (present[t]) out.push_back(static_cast<int64_t>(t));
    all = all && present[t];
  }
  if (all) out.clear();
  return out;
}

namespace {

// Per-task values of the subset back at their tasks' places (0 elsewhere).
std::vector<double> scatter(const std::vector<double>& sub, const std::vector<int64_t>& tasks, size_t T) {
  if (tasks.empty()) return sub;
  std::vector<double> out(T, 0.0);
  for (size_t i = 0; i < tasks.size() && i < sub.size(); ++i) out[static_cast<size_t>(tasks[i])] = sub[i];
  return out;
}

}  // namespace

std::vector<double> loss_weights_for_step(Weighting& w, const std::vector<double>& losses,
                                          const std::vector<bool>& present, StepContext ctx) {
  ctx.tasks = subset_of(present);
  if (ctx.tasks.empty() && std::find(present.begin(), present.end(), false) != present.end())
    return std::vector<double>(present.size(), 0.0);  // no task present: nothing to weight
  return scatter(w.loss_weights(losses.empty() ? losses : ctx.select(losses), ctx), ctx.tasks, present.size());
}

at::Tensor combine_for_step(Weighting& w, const at::Tensor& G, const std::vector<double>& losses,
                            const std::vector<bool>& present, StepContext ctx, std::vector<double>& weights) {
  ctx.tasks = subset_of(present);
  at::Tensor rows = G;
  if (!ctx.tasks.empty()) rows = G.index_select(0, at::tensor(ctx.tasks, at::kLong));
  at::Tensor out = w.combine(rows, ctx.select(losses), ctx);
  if (w.last_weights().size() == static_cast<size_t>(rows.size(0)))
    weights = scatter(w.last_weights(), ctx.tasks, present.size());
  return out;
}

void after_step_for_step(Weighting& w, const std::vector<double>& losses_after, const std::vector<bool>& present,
                         StepContext ctx) {
  ctx.tasks = subset_of(present);
  w.after_step(ctx.select(losses_after), ctx);
}

}  // namespace mtl
