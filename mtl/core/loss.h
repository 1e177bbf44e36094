// The loss-function type: loss(output, target) -> the *mean over the batch's examples*, a scalar, so that shard
// losses weighted by shard size add up exactly to the full-batch loss. Lives in core because a TaskSpec holds
// one; the built-in losses and their registry are in heads/head.h.
//   mtl::LossFn mse = [](const at::Tensor& out, const at::Tensor& y) { return (out - y).pow(2).mean(); };
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>

namespace mtl {

/// loss(output, target) -> scalar mean over examples.
using LossFn = std::function<at::Tensor(const at::Tensor& output, const at::Tensor& target)>;

}  // namespace mtl
