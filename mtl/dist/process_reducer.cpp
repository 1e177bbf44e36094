#include "mtl/dist/process_reducer.h"

#include <ATen/ATen.h>

#include <algorithm>

namespace mtl {

void ProcessReducer::reduce_losses(const WorkerBufferList& workers, std::vector<double>& losses,
                                   std::vector<bool>& present) {
  OrderedReducer::reduce_losses(workers, losses, present);
  const int64_t T = static_cast<int64_t>(losses.size());
  at::Tensor buf = at::empty({2 * T}, at::kDouble);
  auto* v = buf.data_ptr<double>();
  for (int64_t t = 0; t < T; ++t) {
    v[t] = losses[t];
    v[T + t] = present[t] ? 1.0 : 0.0;
  }
  std::vector<at::Tensor> one{buf};
  group_->allreduce_sum(one);
  bytes_ += buf.nbytes();
  for (int64_t t = 0; t < T; ++t) {
    losses[t] = v[t];
    present[t] = v[T + t] > 0.0;
  }
}

void ProcessReducer::reduce_gates(const WorkerBufferList& workers, std::vector<double>& gates) {
  OrderedReducer::reduce_gates(workers, gates);
  if (gates.empty()) return;  // the same on every rank: the architecture's gate sizes
  at::Tensor buf = at::from_blob(gates.data(), {static_cast<int64_t>(gates.size())}, at::kDouble).clone();
  std::vector<at::Tensor> one{buf};
  group_->allreduce_sum(one);
  bytes_ += buf.nbytes();
  std::copy(buf.data_ptr<double>(), buf.data_ptr<double>() + buf.numel(), gates.begin());
}

void ProcessReducer::reduce_gradients(const WorkerBufferList& workers, std::vector<at::Tensor>& params) {
  OrderedReducer::reduce_gradients(workers, params);
  // One flat buffer: every parameter's gradient (zeros where this rank has none), then one flag per parameter
  // that says whether any rank had one. The gradients become views of the buffer, as DDP's bucket views.
  int64_t total = 0;
  at::ScalarType type = at::kFloat;
  for (const auto& p : params) {
    total += p.numel();
    type = p.scalar_type();
  }
  const int64_t K = static_cast<int64_t>(params.size());
  at::Tensor flat = at::empty({total + K}, at::TensorOptions().dtype(type));
  int64_t pos = 0;
  for (int64_t k = 0; k < K; ++k) {
    const at::Tensor& g = params[k].grad();
    at::Tensor slot = flat.narrow(0, pos, params[k].numel());
    if (g.defined())
      slot.view(params[k].sizes()).copy_(g);
    else
      slot.zero_();
    pos += params[k].numel();
  }
  at::Tensor defined = at::empty({K}, at::kDouble);
  for (int64_t k = 0; k < K; ++k) defined.data_ptr<double>()[k] = params[k].grad().defined() ? 1.0 : 0.0;
  flat.narrow(0, total, K).copy_(defined);
  std::vector<at::Tensor> one{flat};
  group_->allreduce_sum(one);
  bytes_ += flat.nbytes();
  at::Tensor flags = flat.narrow(0, total, K).to(at::kDouble);
  const double* any = flags.data_ptr<double>();
  pos = 0;
  for (int64_t k = 0; k < K; ++k) {
    params[k].mutable_grad() =
        any[k] > 0.0 ? flat.narrow(0, pos, params[k].numel()).view(params[k].sizes()) : at::Tensor();
    pos += params[k].numel();
  }
}

at::Tensor ProcessReducer::reduce_task_rows(const WorkerBufferList& workers) {
  at::Tensor G = OrderedReducer::reduce_task_rows(workers);
  TORCH_CHECK(G.defined(), "ProcessReducer: a rank without per-task gradient rows (every rank needs rows of the batch)");
  std::vector<at::Tensor> one{G};
  group_->allreduce_sum(one);  // G is the reducer's or a worker's own reusable matrix: summing in place is safe
  bytes_ += G.nbytes();
  return G;
}

at::Tensor ProcessReducer::gather_representation_grads(const WorkerBufferList& workers) {
  at::Tensor local = OrderedReducer::gather_representation_grads(workers);
  TORCH_CHECK(local.defined(), "ProcessReducer: a rank without representation gradients (every rank needs rows)");
  const int64_t T = local.size(0);
  std::vector<at::Tensor> parts = group_->allgather(local.contiguous().view(-1));
  bytes_ += local.nbytes();
  std::vector<at::Tensor> columns;
  representation_offset_ = 0;
  for (int r = 0; r < static_cast<int>(parts.size()); ++r) {
    columns.push_back(parts[r].view({T, -1}));
    if (r < group_->rank()) representation_offset_ += columns.back().size(1);
  }
  return at::cat(columns, 1);
}

void ProcessReducer::reduce_buffers(std::vector<at::Tensor>& buffers) {
  std::vector<at::Tensor> floats;
  for (auto& b : buffers)
    if (at::isFloatingType(b.scalar_type())) floats.push_back(b);  // counters agree on every rank
  if (floats.empty()) return;
  group_->allreduce_sum(floats);
  for (auto& b : floats) {
    b.div_(static_cast<double>(group_->world_size()));
    bytes_ += b.nbytes();
  }
}

}  // namespace mtl
