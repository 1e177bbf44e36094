// MultiTaskModel: one shared backbone (the trunk) and one head per task (hard parameter sharing).
//   auto out = model->forward(batch.inputs);   // out.features [B, D], out.outputs[t] = head t's outputs
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/moduledict.h>
#include <torch/nn/pimpl.h>

#include <string>
#include <vector>

#include "backbones/backbone.h"
#include "heads/head.h"

namespace mtl {

struct ModelOutput {
  at::Tensor features;              // shared representation [B, D]
  at::Tensor token_features;        // per-token representation [B, L, D] (text encoders), else undefined
  std::vector<at::Tensor> outputs;  // one per task, in task order; undefined for a token-level head when
                                    // the batch has no per-token features (a batch from another dataset)
};

class MultiTaskModelImpl : public torch::nn::Module {
 public:
  MultiTaskModelImpl(Backbone backbone, std::vector<std::string> task_names, std::vector<Head> heads);

  ModelOutput forward(const TensorMap& inputs);
  /// Heads only, on given shared features (used to take gradients w.r.t. the representation).
  std::vector<at::Tensor> heads_forward(const at::Tensor& features, const at::Tensor& token_features = {});

  size_t num_tasks() const { return heads_.size(); }
  const std::vector<std::string>& task_names() const { return task_names_; }
  const Backbone& backbone() const { return backbone_; }
  const Head& head(size_t t) const { return heads_[t]; }

  /// Trainable parameters of the trunk (shared by all tasks) and of one task's head.
  std::vector<at::Tensor> shared_parameters() const;
  std::vector<at::Tensor> head_parameters(size_t t) const;

  /// Training mode for everything except the frozen normalisation layers (see mtl/model/freezing.h),
  /// which keep using their running statistics.
  void train(bool on = true) override;
  /// Module names (e.g. "backbone.stem_bn") held in eval mode while training; replicas copy them.
  void set_frozen_norm_modules(std::vector<std::string> names);
  const std::vector<std::string>& frozen_norm_modules() const { return frozen_norm_names_; }

 private:
  Backbone backbone_;
  std::vector<std::string> task_names_;
  std::vector<Head> heads_;
  std::vector<std::string> frozen_norm_names_;
  std::vector<std::shared_ptr<torch::nn::Module>> frozen_norms_;
};
TORCH_MODULE(MultiTaskModel);

}  // namespace mtl
