// What every multi-threaded gradient engine shares: the trainable parameters in the engine's order, where each
// sits in that order, and model replicas for models with buffers (BatchNorm running statistics are written
// during forward, so each thread that runs the trunk on its own rows needs its own): a replica's parameters
// alias the model's (optimizer updates reach it), its buffers are averaged back into the model after each step.
//
//   MultiTaskModel replica = make_replica();
//   alias_parameters(model, replica);
//   ... forward passes on the replicas ...
//   average_replica_buffers(model, {replica_a, replica_b}, reducer);
#pragma once

#include <unordered_map>
#include <vector>

#include "mtl/model/multi_task_model.h"

namespace mtl {

class GradientReducer;

/// The parameters that take gradients, in module order (the engines' order).
std::vector<at::Tensor> trainable_parameters(const MultiTaskModelImpl& model);

/// Where each parameter sits in `params` (and in a worker's grads), keyed by its TensorImpl.
std::unordered_map<const void*, size_t> parameter_positions(const std::vector<at::Tensor>& params);

/// Points `replica`'s parameters at `model`'s (same storage, same requires_grad), copies the buffers, and
/// keeps the same normalisation layers frozen.
void alias_parameters(const MultiTaskModel& model, MultiTaskModel& replica);

/// The model's buffers become the mean of the replicas' (floating buffers; counters are copied from the first),
/// then `reducer.reduce_buffers` (across processes), and every replica restarts from the result. Nothing to do
/// without replicas.
void average_replica_buffers(MultiTaskModel& model, const std::vector<MultiTaskModel>& replicas,
                             GradientReducer& reducer);

}  // namespace mtl
