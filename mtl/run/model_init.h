// `model.init`: start a model from the weights of an earlier mtl run or of a safetensors file.
//
//   model:
//     init:
//       path: runs/fashion_pretrain   # a run directory, a checkpoint, a .safetensors file or a torch.save .pt/.pth
//       format: auto                  # auto (directory, extension, archive contents) | checkpoint | safetensors | torch
//       key: ""                       # torch: the entry of a saved dict that holds the state dict ("model")
//       heads: none                   # none | all (those the file has) | [left, right] (must be in the file)
//       strip_prefix: []              # a name or a list: the first matching prefix is removed from file names
//       add_prefix: ""                # then this is prepended, e.g. backbone
//       rename: []                    # then each rule in order: {from: REGEX, to: REPLACEMENT},
//                                     #   {split: REGEX, to: [NAMES], dim: 0, sizes: []}
//                                     #   or {concat: [REGEXES], to: NAME, dim: 0}
//       ignore: []                    # mapped names (dotted prefixes) dropped silently, e.g. backbone.fc
//       preset: none                  # torch_transformer_encoder: torch.nn.TransformerEncoder names -> transformer
//       adapt_channels: false         # true: 3-channel kernels summed for 1-channel data (or spread, the reverse)
//       strict: true                  # false: load what fits and report the rest
#pragma once

#include <torch/nn/module.h>

#include <optional>
#include <string>
#include <vector>

#include "mtl/config/config_node.h"
#include "mtl/io/weight_import.h"

namespace mtl {

struct ModelInit {
  std::string path;    // as written (relative paths are relative to the working directory)
  std::string format;  // auto | checkpoint | safetensors | torch
  std::string key;     // torch: dotted path to the state dict inside a saved dict ("" = the file's dict itself)
  WeightImportOptions import;
};

/// Reads `model.init` from the `model` node; nullopt when absent. `task_names` are the config's tasks (for
/// `heads`). With `check_path`, a path that does not exist (or a directory without checkpoint.pt) is an
/// error at model.init.path; eval, predict and resume pass false, as they load the run's own checkpoint.
std::optional<ModelInit> parse_model_init(const ConfigNode& model, const std::vector<std::string>& task_names,
                                          bool check_path);

/// The weights file `init` names: a run directory's checkpoint.pt, or the path itself.
std::string model_init_file(const ModelInit& init);

/// The format `init` resolves to: checkpoint, safetensors or torch (auto looks at the path and the archive).
std::string model_init_format(const ModelInit& init);

/// Reads the file and imports it into `model` (throws mtl::Error naming the file); prints a one-line note
/// (strict) or the report (not strict) to stderr and returns a one-line summary (Run::init_report).
std::string apply_model_init(const ModelInit& init, torch::nn::Module& model);

}  // namespace mtl
