// ProcessReducer: the engine's reducer across processes. Each call first reduces this process's workers in
// worker order (OrderedReducer), then makes one c10d collective of exactly what the weighting method needs:
// the losses (with the tasks' presence), the gradient of every trainable parameter (one flat buffer, like a
// DDP bucket), the T x P matrix of per-task trunk gradients, or the per-task representation gradients
// (gathered in rank order: rank r's rows of the global batch follow rank r - 1's). Every rank's shards were
// scaled by their share of the *global* batch (Batch::global_size), so the sums are full-batch values.
//
//   auto reducer = std::make_unique<mtl::ProcessReducer>(group);
//   auto engine = mtl::make_parallel_engine(model, tasks, weighting, options, factory, std::move(reducer));
#pragma once

#include <memory>

#include "mtl/dist/process_group.h"
#include "mtl/engine/reducer.h"

namespace mtl {

class ProcessReducer : public OrderedReducer {
 public:
  explicit ProcessReducer(std::shared_ptr<ProcessGroup> group) : group_(std::move(group)) {}
  void reduce_losses(const WorkerBufferList& workers, std::vector<double>& losses,
                     std::vector<bool>& present) override;
  void reduce_gradients(const WorkerBufferList& workers, std::vector<at::Tensor>& params) override;
  void reduce_gates(const WorkerBufferList& workers, std::vector<double>& gates) override;
  at::Tensor reduce_task_rows(const WorkerBufferList& workers) override;
  at::Tensor gather_representation_grads(const WorkerBufferList& workers) override;
  int64_t representation_offset() const override { return representation_offset_; }
  void reduce_buffers(std::vector<at::Tensor>& buffers) override;

  /// Bytes this rank handed to collectives so far (a collective's payload counted once; what goes over the wire
  /// depends on Gloo's algorithm: a ring allreduce sends about twice the payload).
  int64_t bytes_reduced() const { return bytes_; }

 private:
  std::shared_ptr<ProcessGroup> group_;
  int64_t representation_offset_ = 0;
  int64_t bytes_ = 0;
};

}  // namespace mtl
