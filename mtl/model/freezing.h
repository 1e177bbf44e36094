// Freezing: which parameters train. The `freeze:` section picks parameters by name pattern, by the first K
// backbone blocks, or as everything except what `train_only` names, and may change that on a schedule of
// epochs (gradual unfreezing). Frozen parameters have requires_grad = false: the engine computes no gradient
// for them, so the optimizer keeps no state for them and leaves them bit-for-bit unchanged; normalisation
// layers whose parameters are all frozen use their running statistics (eval mode) while the model trains.
//   freeze:
//     params: [backbone]          # name patterns (mtl/core/name_pattern.h)
//     blocks: 2                   # the backbone's first 2 blocks (mtl inspect lists them)
//     train_only: [heads.new]     # or: freeze everything else
//     schedule:                   # from epoch E (counted from 1) on, freeze exactly this instead
//       - {epoch: 3, blocks: 1}
//       - {epoch: 5}              # nothing frozen
#pragma once

#include <set>
#include <string>
#include <vector>

#include "mtl/model/multi_task_model.h"

namespace mtl {

class ConfigNode;

struct FreezeSetting {
  std::vector<std::string> params;      // frozen name patterns
  std::vector<std::string> train_only;  // when non-empty: everything that matches none of these is frozen
  int64_t blocks = 0;                   // the first `blocks` backbone blocks are frozen
  bool operator==(const FreezeSetting& o) const {
    return params == o.params && train_only == o.train_only && blocks == o.blocks;
  }
};

struct FreezeOptions {
  FreezeSetting initial;
  std::vector<std::pair<int64_t, FreezeSetting>> schedule;  // (first epoch, 0-based; setting), increasing
  /// The setting in force during `epoch` (0-based).
  const FreezeSetting& at_epoch(int64_t epoch) const;
  bool empty() const;
};

/// Parses the `freeze:` section (absent: nothing frozen).
FreezeOptions parse_freeze_options(const ConfigNode& node);

/// The trunk's blocks in order (the architecture's: mtl/model/architecture.h), each the list of parameter-name
/// prefixes it covers, relative to the model ("backbone.conv1"; an expert architecture's block i covers block i
/// of every level-1 expert).
std::vector<std::vector<std::string>> backbone_blocks(const MultiTaskModelImpl& model);

/// Names of the parameters that `setting` freezes in `model`.
std::set<std::string> frozen_parameters(const MultiTaskModelImpl& model, const FreezeSetting& setting);

/// Checks every stage of `options` against `model` (patterns select parameters, `blocks` within range);
/// throws mtl::Error located in `node` (the `freeze:` section) otherwise.
void validate_freeze_options(const FreezeOptions& options, const MultiTaskModelImpl& model, const ConfigNode& node);

/// True when some stage of `options` freezes every backbone parameter.
bool freezes_whole_trunk(const FreezeOptions& options, const MultiTaskModelImpl& model);

/// Freezes exactly `frozen` (requires_grad false, gradients dropped) and unfreezes everything else; puts
/// normalisation layers with all parameters frozen (or, without parameters, inside a frozen part) in eval
/// mode whenever the model trains. Returns the number of frozen parameter elements.
int64_t apply_freezing(MultiTaskModelImpl& model, const std::set<std::string>& frozen);

}  // namespace mtl
