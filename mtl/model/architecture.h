// Architectures (`model.architecture`): how the tasks share the network between the inputs and the heads.
//   hps   hard parameter sharing: one backbone (model.backbone) for every task (the default)
//   mmoe  E experts (each a model.backbone), one softmax gate per task (Ma et al. 2018)
//   cgc   shared and task-specific experts, one gate per task (Tang et al. 2020)
//   ple   L levels of cgc, a shared gate between levels (Tang et al. 2020)
//   dselect_k  E experts, per task a differentiable top-k gate (Hazimeh et al. 2021)
//   cross_stitch, mtan, branch, ltb  layer-wise sharing over a backbone that runs in stages
// Every architecture says which trainable parameters only one task's output depends on (its task parameters;
// with the head, what that task owns) and which several tasks' outputs depend on (shared: what gradient-based
// weighting methods combine), and, where every path from a shared parameter to a task output passes through
// one tensor, that tensor (the shared representation that `weighting.space: representation` differentiates).
//
//   auto arch = architecture_registry().get("mmoe")(options, context);
//   MultiTaskModel model(arch, task_names, heads);   // registers arch->modules() by name
#pragma once

#include <torch/nn/module.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "backbones/backbone.h"

namespace mtl {

/// What the architecture gives the heads.
struct TrunkOutput {
  at::Tensor shared;               // the shared representation [B, D'] (see above), or undefined: there is none
  std::vector<at::Tensor> task;    // per task: the features its head reads [B, D]
  at::Tensor tokens;               // per-token features [B, L, D] (hps over a text encoder), else undefined
  std::vector<at::Tensor> gates;   // per task: its gate's weights over the experts it mixes [B, E_t] (expert
                                   // architectures; ple: the last level), else empty
  std::vector<at::Tensor> regularizers;  // per task: a scalar the engine adds to that task's training loss
                                         // (dselect_k's selector entropy), or empty / undefined: none
  std::vector<std::vector<at::Tensor>> maps;  // per task: the feature maps [B, C_i, H_i, W_i] it reads at each
                                              // stage whose output is 4-D, input side first (architectures over a
                                              // backbone that runs in stages, after keep_maps()), else empty
};

using NamedModules = std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>>;

class Architecture {
 public:
  virtual ~Architecture() = default;
  virtual std::string name() const = 0;
  /// The modules the model registers, by name: parameter names are "<name>.<...>" ("backbone.conv1.weight").
  virtual NamedModules modules() const = 0;
  virtual TrunkOutput forward(const TensorMap& inputs) = 0;
  /// Features per example that each head reads.
  virtual int64_t output_dim() const = 0;
  virtual bool has_token_features() const { return false; }
  /// Whether forward() gives a shared representation (TrunkOutput::shared); when not, why (for the error).
  virtual std::string no_representation_reason() const { return ""; }
  /// Parameters (trainable or not) that only task t's output depends on, beyond its head.
  virtual std::vector<at::Tensor> task_parameters(size_t /*t*/) const { return {}; }
  /// Ordered blocks, input side first (`freeze.blocks`, `optimizer.layer_lr_decay`), each a list of full
  /// parameter-name prefixes ("backbone.conv1").
  virtual std::vector<std::vector<std::string>> blocks() const = 0;
  /// Draws the initial weights from the run's generator, in a fixed order.
  virtual void reset_parameters(at::Generator& gen) = 0;
  /// One line for `mtl inspect` and the run's start ("mmoe: 4 experts (lenet) x 2 gates").
  virtual std::string describe() const = 0;
  /// Makes forward() fill TrunkOutput::maps (dense prediction heads read them); false when this architecture
  /// cannot (its backbone does not run in stages, or it mixes pooled features only, as the expert ones do).
  virtual bool keep_maps() { return false; }
  /// Per task, how many experts its gate mixes (TrunkOutput::gates[t].size(1)); empty when there are no gates.
  virtual std::vector<int64_t> gate_sizes() const { return {}; }
};
using ArchitecturePtr = std::shared_ptr<Architecture>;

/// A backbone's blocks as name prefixes under `prefix` ("backbone."): its block_names(), or else its
/// parameterised children (ModuleList and Sequential elements one by one).
std::vector<std::vector<std::string>> backbone_block_prefixes(const BackboneImpl& backbone, const std::string& prefix);

/// Example inputs for `schema` (two examples of zeros, or of token id 1), for probing shapes.
TensorMap example_inputs(const DatasetSchema& schema);

/// The channel count of each of TrunkOutput::maps (the same for every task), from a forward pass of
/// example_inputs in eval mode after keep_maps(); empty when the architecture gives no maps.
std::vector<int64_t> probe_map_channels(Architecture& architecture, const DatasetSchema& schema);

/// Hard parameter sharing: the backbone's pooled (and per-token) features for every task; after keep_maps(),
/// run stage by stage, its feature maps too.
class HpsArchitecture : public Architecture {
 public:
  HpsArchitecture(Backbone backbone, size_t tasks) : backbone_(std::move(backbone)), tasks_(tasks) {}
  std::string name() const override { return "hps"; }
  NamedModules modules() const override { return {{"backbone", backbone_}}; }
  TrunkOutput forward(const TensorMap& inputs) override;
  int64_t output_dim() const override { return backbone_->output_dim(); }
  bool has_token_features() const override { return backbone_->has_token_features(); }
  std::vector<std::vector<std::string>> blocks() const override;
  void reset_parameters(at::Generator& gen) override { backbone_->reset_parameters(gen); }
  std::string describe() const override;
  bool keep_maps() override { return keep_maps_ = backbone_->num_stages() > 0; }
  const Backbone& backbone() const { return backbone_; }

 private:
  Backbone backbone_;
  size_t tasks_;
  bool keep_maps_ = false;
};

/// What an architecture factory gets besides its own options: the backbone section (each expert is one),
/// the dataset's schema and the task names.
struct ArchitectureContext {
  const ConfigNode& backbone;
  BackboneFactory make_backbone;
  const DatasetSchema& schema;
  std::vector<std::string> tasks;
};

using ArchitectureFactory = std::function<ArchitecturePtr(const ConfigNode& options, const ArchitectureContext&)>;
Registry<ArchitectureFactory>& architecture_registry();

}  // namespace mtl
