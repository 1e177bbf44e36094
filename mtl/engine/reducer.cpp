#include "mtl/engine/reducer.h"

#include <ATen/ATen.h>

#include "mtl/core/threads.h"

namespace mtl {

namespace {

constexpr int64_t kParallelReduceNumel = 1 << 20;

// Contiguous parameter ranges of about total/n elements each: range i is [out[i], out[i + 1]).
std::vector<size_t> parameter_ranges(const std::vector<at::Tensor>& params, int n) {
  int64_t total = 0;
  for (const auto& p : params) total += p.numel();
  std::vector<size_t> out(n + 1, params.size());
  out[0] = 0;
  int64_t seen = 0;
  int range = 1;
  for (size_t k = 0; k < params.size() && range < n; ++k) {
    seen += params[k].numel();
    while (range < n && seen >= total * range / n) out[range++] = k + 1;
  }
  return out;
}

}  // namespace

void OrderedReducer::reduce_losses(const WorkerBufferList& workers, std::vector<double>& losses,
                                   std::vector<bool>& present) {
  for (const WorkerBuffers* w : workers)  // fixed order
    for (size_t t = 0; t < losses.size() && t < w->present.size(); ++t)
      if (w->present[t]) {
        present[t] = true;
        losses[t] += w->losses[t];
      }
}

void OrderedReducer::reduce_gates(const WorkerBufferList& workers, std::vector<double>& gates) {
  for (const WorkerBuffers* w : workers)  // fixed order
    for (size_t k = 0; k < gates.size() && k < w->gates.size(); ++k) gates[k] += w->gates[k];
}

void OrderedReducer::reduce_gradients(const WorkerBufferList& workers, std::vector<at::Tensor>& params) {
  auto reduce = [&](size_t k) {
    at::Tensor sum;
    int terms = 0;
    for (const WorkerBuffers* w : workers) {
      if (w->grads.empty() || !w->grads[k].defined()) continue;
      const at::Tensor& g = w->grads[k];
      // The first addition is out of place: never write into a tensor autograd handed out (it may be
      // shared with another parameter's gradient).
      sum = terms == 0 ? g : terms == 1 ? sum + g : sum.add_(g);
      ++terms;
    }
    params[k].mutable_grad() = sum;
  };
  int64_t total = 0;
  for (const auto& p : params) total += p.numel();
  // Another pool round trip costs more than it saves on small models.
  if (!pool_ || pool_->size() < 2 || total < kParallelReduceNumel) {
    for (size_t k = 0; k < params.size(); ++k) reduce(k);
    return;
  }
  if (ranges_for_ != params.size() || ranges_.empty()) {
    ranges_ = parameter_ranges(params, pool_->size());
    ranges_for_ = params.size();
  }
  pool_->run([&](int i) {
    for (size_t k = ranges_[i]; k < ranges_[i + 1]; ++k) reduce(k);
  });
}

at::Tensor OrderedReducer::reduce_task_rows(const WorkerBufferList& workers) {
  std::vector<const at::Tensor*> rows;
  for (const WorkerBuffers* w : workers)
    if (w->task_rows.defined()) rows.push_back(&w->task_rows);
  if (rows.empty()) return at::Tensor();
  if (rows.size() == 1) return *rows[0];
  if (!task_rows_.defined() || !task_rows_.is_same_size(*rows[0]) || task_rows_.dtype() != rows[0]->dtype())
    task_rows_ = at::empty_like(*rows[0]);
  at::add_out(task_rows_, *rows[0], *rows[1]);  // fixed order
  for (size_t i = 2; i < rows.size(); ++i) task_rows_.add_(*rows[i]);
  return task_rows_;
}

at::Tensor OrderedReducer::gather_representation_grads(const WorkerBufferList& workers) {
  std::vector<at::Tensor> parts;
  for (const WorkerBuffers* w : workers)
    if (w->rep_rows.defined()) parts.push_back(w->rep_rows);
  if (parts.empty()) return at::Tensor();
  return parts.size() == 1 ? parts[0] : at::cat(parts, 1);
}

std::vector<std::vector<double>> reduce_gate_means(GradientReducer& reducer, const WorkerBufferList& workers,
                                                   const std::vector<int64_t>& sizes) {
  std::vector<std::vector<double>> out;
  if (sizes.empty()) return out;
  int64_t total = 0;
  for (int64_t n : sizes) total += n;
  std::vector<double> flat(static_cast<size_t>(total), 0.0);
  reducer.reduce_gates(workers, flat);
  size_t k = 0;
  for (int64_t n : sizes) {
    out.emplace_back(flat.begin() + static_cast<std::ptrdiff_t>(k), flat.begin() + static_cast<std::ptrdiff_t>(k + n));
    k += static_cast<size_t>(n);
  }
  return out;
}

}  // namespace mtl
