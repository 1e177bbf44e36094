// MlpBlock: a stack of hidden layers, Linear -> activation -> dropout per width. The one implementation of
// the body of the MLP heads, the mlp backbone and the multimodal trunk.
//
//   mtl::MlpBlock block(mtl::MlpBlockOptions(64, {32, 16}).activation("gelu"));
//   at::Tensor y = block->forward(x);  // [B, 64] -> [B, 16]
//
// Parameters: <i>.weight, <i>.bias for layer k at i = k * index_stride. Index stride 1 gives the heads'
// names (hidden.0, hidden.1, ...); stride 2 the mlp backbone's and multimodal trunk's (layers.0, layers.2,
// ...: their activations were modules between the Linear layers). Checkpoints and exported weights store
// these names, so they never change.
#pragma once

#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <string>
#include <vector>

namespace mtl {

struct MlpBlockOptions {
  MlpBlockOptions(int64_t in_features, std::vector<int64_t> hidden);
  TORCH_ARG(int64_t, in_features);
  TORCH_ARG(std::vector<int64_t>, hidden);       // widths of the layers; empty = the identity
  TORCH_ARG(std::string, activation) = "relu";   // relu | gelu | tanh, after every Linear
  TORCH_ARG(double, dropout) = 0.0;              // in [0, 1), after every activation
  TORCH_ARG(int64_t, index_stride) = 1;          // parameter names, see above

 public:
  /// Throws mtl::Error(key, expected) for the first bad value.
  void validate() const;
};

class MlpBlockImpl : public torch::nn::Module {
 public:
  explicit MlpBlockImpl(MlpBlockOptions options);
  /// [B, in_features] (or [..., in_features]) -> [..., out_features()]; dropout draws from the thread's
  /// random stream (mtl/core/random.h) in training mode.
  at::Tensor forward(at::Tensor x);
  /// Layer k alone (Linear, activation, dropout).
  at::Tensor layer_forward(size_t k, const at::Tensor& x);
  size_t num_layers() const { return layers_.size(); }
  /// The last width, or in_features without layers.
  int64_t out_features() const;
  const MlpBlockOptions& options() const { return options_; }
  /// Submodule names of the Linear layers, input side first ("0", "2", ... with index stride 2).
  std::vector<std::string> layer_names() const;

 private:
  MlpBlockOptions options_;
  std::vector<torch::nn::Linear> layers_;
};
TORCH_MODULE(MlpBlock);

/// `activation` (relu | gelu | tanh) of x.
at::Tensor activate(const at::Tensor& x, const std::string& activation);

}  // namespace mtl
