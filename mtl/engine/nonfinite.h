// The sync engine's guard against non-finite steps: before the optimizer step, every present task's loss and
// every trainable parameter's gradient must be finite; a step that fails is not applied (the weights stay as
// they were) and StepResult::nonfinite says why. The trainer's `trainer.on_nonfinite` policy then stops the run
// or counts the skip (mtl/run/trainer.cpp).
//
//   std::string why = mtl::find_nonfinite(result, tasks, model->named_parameters(), optimizer);
//   if (why.empty()) optimizer.step();
#pragma once

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <sstream>
#include <string>
#include <vector>

#include "mtl/core/stateful.h"
#include "mtl/core/task.h"

namespace mtl {

struct StepResult;

/// Why the step in `r` (with gradients in .grad) must not be applied, e.g. "task 'left': loss is nan" or
/// "gradient of 'trunk.fc1.weight' has inf"; empty when every present loss and every gradient is finite.
/// `named` names the model's parameters; gradients of the optimizer's other parameters (a weighting
/// method's learned values) are checked too.
std::string find_nonfinite(const StepResult& r, const std::vector<TaskSpec>& tasks,
                           const torch::OrderedDict<std::string, at::Tensor>& named,
                           const torch::optim::Optimizer& optimizer);

/// A copy of a Stateful's state (a weighting method's running averages), to undo what a skipped step's
/// gradient computation changed.
class StateSnapshot {
 public:
  void capture(const Stateful& state);
  void restore(Stateful& state) const;

 private:
  std::string bytes_;
};

}  // namespace mtl
