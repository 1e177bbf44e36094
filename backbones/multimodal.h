// multimodal backbone: one stem per input (modality), each any backbone plus a linear map to a common
// width, fused (sum, or concatenation) and fed to a shared trunk (an MLP). A batch runs the stems of the
// inputs it has: an image batch the image stem, a text batch the text stem, an example with both
// (multimodal tasks) both. With `concat`, a missing modality contributes zeros; with `sum`, nothing.
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

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>

#include "backbones/backbone.h"

namespace mtl {

struct MultimodalOptions {
  int64_t dim = 128;
  std::string fusion = "sum";
  std::vector<int64_t> trunk{128};
  std::string activation = "relu";
  double dropout = 0.0;
};

class MultimodalBackboneImpl : public BackboneImpl {
 public:
  MultimodalBackboneImpl(const MultimodalOptions& options, std::vector<std::string> inputs, std::vector<Backbone> stems);
  at::Tensor forward(const TensorMap& inputs) override;
  int64_t output_dim() const override { return out_dim_; }
  std::vector<std::string> block_names() const override;

 private:
  MultimodalOptions options_;
  std::vector<std::string> inputs_;  // the input each stem reads
  std::vector<Backbone> stems_;
  torch::nn::ModuleList projections_{nullptr};
  torch::nn::Sequential trunk_{nullptr};
  int64_t out_dim_ = 0;
};

Backbone make_multimodal_backbone(const ConfigNode& options, const DatasetSchema& schema);

}  // namespace mtl
