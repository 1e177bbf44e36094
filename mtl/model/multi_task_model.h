// MultiTaskModel: an architecture (mtl/model/architecture.h: how the tasks share the network; hard parameter
// sharing over one backbone by default) and one head per task.
//   auto out = model->forward(batch.inputs);   // out.features [B, D'], out.outputs[t] = head t's outputs
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/moduledict.h>
#include <torch/nn/pimpl.h>

#include <string>
#include <unordered_set>
#include <vector>

#include "backbones/backbone.h"
#include "heads/head.h"
#include "mtl/model/architecture.h"

namespace mtl {

struct ModelOutput {
  at::Tensor features;              // shared representation [B, D'], or undefined when the architecture has none
  at::Tensor token_features;        // per-token representation [B, L, D] (text encoders), else undefined
  std::vector<at::Tensor> outputs;  // one per task, in task order; undefined for a token-level head when
                                    // the batch has no per-token features (a batch from another dataset)
  std::vector<at::Tensor> gates;    // per task: gate weights over experts [B, E_t] (expert architectures)
  std::vector<at::Tensor> regularizers;  // per task: added to its training loss (TrunkOutput::regularizers)
};

class MultiTaskModelImpl : public torch::nn::Module {
 public:
  /// Hard parameter sharing over `backbone`.
  MultiTaskModelImpl(Backbone backbone, std::vector<std::string> task_names, std::vector<Head> heads);
  MultiTaskModelImpl(ArchitecturePtr architecture, std::vector<std::string> task_names, std::vector<Head> heads);

  ModelOutput forward(const TensorMap& inputs);
  /// forward() in two parts, for engines that run the heads apart from the trunk (model parallelism): the
  /// architecture's output, then head t's output on it (undefined for a token-level head without per-token
  /// features).
  TrunkOutput trunk(const TensorMap& inputs);
  at::Tensor head_output(size_t t, const TrunkOutput& trunk);

  size_t num_tasks() const { return heads_.size(); }
  const std::vector<std::string>& task_names() const { return task_names_; }
  const Architecture& architecture() const { return *architecture_; }
  Architecture& architecture() { return *architecture_; }
  /// The backbone of hard parameter sharing; null for other architectures.
  const Backbone& backbone() const { return backbone_; }
  const Head& head(size_t t) const { return heads_[t]; }

  /// Trainable parameters several tasks' outputs depend on (what gradient-based methods combine), and those
  /// of task t alone (its head and the architecture's task parameters, e.g. its gate).
  std::vector<at::Tensor> shared_parameters() const;
  std::vector<at::Tensor> head_parameters(size_t t) const;
  /// Names of the shared parameters (trainable or not), in parameter order.
  std::vector<std::string> shared_parameter_names() const;
  /// The architecture's blocks as parameter-name prefixes (freeze.blocks, optimizer.layer_lr_decay).
  std::vector<std::vector<std::string>> trunk_blocks() const { return architecture_->blocks(); }

  /// Training mode for everything except the frozen normalisation layers (see mtl/model/freezing.h),
  /// which keep using their running statistics.
  void train(bool on = true) override;
  /// Module names (e.g. "backbone.stem_bn") held in eval mode while training; replicas copy them.
  void set_frozen_norm_modules(std::vector<std::string> names);
  const std::vector<std::string>& frozen_norm_modules() const { return frozen_norm_names_; }

 private:
  /// The architecture's task parameters of every task (tensor impls).
  std::unordered_set<const void*> task_parameter_set() const;

  ArchitecturePtr architecture_;
  Backbone backbone_;
  std::vector<std::string> task_names_;
  std::vector<Head> heads_;
  std::vector<std::string> frozen_norm_names_;
  std::vector<std::shared_ptr<torch::nn::Module>> frozen_norms_;
};
TORCH_MODULE(MultiTaskModel);

}  // namespace mtl
