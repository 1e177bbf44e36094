// Initial weights from a run's own generator. LibTorch's modules draw their initial weights from the global
// generator when they are built; mtl draws them again from a generator the run owns, with LibTorch's default
// distribution for each module type, so that a model's initial weights depend only on the run's seed:
// building the same config twice in one process gives the same weights, and mtl never seeds the global
// generator (LibTorch's constructors still draw from it; those draws are overwritten).
//   Linear, Conv1d/2d/3d  weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))   (kaiming_uniform, a = sqrt(5))
//   Embedding             ~ N(0, 1), the padding row zero
//   LSTM, GRU, RNN        every tensor ~ U(-1/sqrt(hidden), 1/sqrt(hidden))
//   LayerNorm, BatchNorm  weight 1, bias 0 (running statistics reset)
// A module type not in this list that holds parameters of its own is an error, so a new component cannot
// silently keep weights drawn from the global generator (components with a scheme of their own override
// BackboneImpl::reset_parameters and call this first).
//
//   at::Generator gen = mtl::make_generator(seed, 0, 0);   mtl::reset_module_parameters(*model, gen);
#pragma once

#include <ATen/core/Generator.h>
#include <torch/nn/module.h>

namespace mtl {

/// Draws every parameter of `module` and its submodules again from `gen` (distributions above).
void reset_module_parameters(torch::nn::Module& module, at::Generator& gen);

}  // namespace mtl
