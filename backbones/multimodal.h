// multimodal backbone: one stem per input (modality), each any backbone plus a linear map to a common
// width, fused (sum, or concatenation) and fed to a shared trunk (an MLP). A batch runs the stems of the
// inputs it has: an image batch the image stem, a text batch the text stem, an example with both
// (multimodal tasks) both. With `concat`, a missing modality contributes zeros; with `sum`, nothing.
//   auto trunk = std::make_shared<mtl::MultimodalBackboneImpl>(mtl::MultimodalBackboneOptions().dim(64),
//       std::vector<std::string>{"image", "text"}, std::vector<mtl::Backbone>{image_stem, text_stem});
//   YAML:
//   model:
//     backbone:
//       type: multimodal
//       dim: 128                       # common feature width of every stem
//       fusion: sum                    # sum | concat
//       stems:
//         image: {type: lenet}         # key: the input name; value: a backbone config for that input
//         text: {type: transformer, dim: 128, layers: 2}
//       trunk: [128]                   # shared hidden layers after fusion ([] = none)
#pragma once

#include <torch/arg.h>
#include <torch/nn/modules/container/modulelist.h>

#include "backbones/backbone.h"
#include "heads/mlp_block.h"

namespace mtl {

struct MultimodalBackboneOptions {
  TORCH_ARG(int64_t, dim) = 128;                   // common feature width of every stem
  TORCH_ARG(std::string, fusion) = "sum";          // sum | concat
  TORCH_ARG(std::vector<int64_t>, trunk) = {128};  // shared hidden layers after fusion ([] = none)
  TORCH_ARG(std::string, activation) = "relu";     // relu | gelu | tanh, in the trunk
  TORCH_ARG(double, dropout) = 0.0;                // in [0, 1), after every trunk activation

 public:
  /// Reads `dim`, `fusion`, `trunk`, `activation` and `dropout` (the stems are built by the factory).
  static MultimodalBackboneOptions from_config(const ConfigNode& options);
  /// Throws mtl::Error(key, expected) for the first bad value.
  void validate() const;
};

class MultimodalBackboneImpl : public BackboneImpl {
 public:
  /// `stems[i]` reads input `inputs[i]`. Throws mtl::Error "MultimodalBackboneOptions.<key>: ..." for bad
  /// options, or without stems.
  MultimodalBackboneImpl(MultimodalBackboneOptions options, std::vector<std::string> inputs,
                         std::vector<Backbone> stems);
  at::Tensor forward(const TensorMap& inputs) override;
  int64_t output_dim() const override { return out_dim_; }
  std::vector<std::string> block_names() const override;

 private:
  MultimodalBackboneOptions options_;
  std::vector<std::string> inputs_;  // the input each stem reads
  std::vector<Backbone> stems_;
  torch::nn::ModuleList projections_{nullptr};
  MlpBlock trunk_{nullptr};          // trunk.0, trunk.2, ... (index stride 2, see heads/mlp_block.h)
  int64_t out_dim_ = 0;
};

/// Registry factory: from_config, a stem per input from the backbone registry, constructor.
Backbone make_multimodal_backbone(const ConfigNode& options, const DatasetSchema& schema);

}  // namespace mtl
