// The training-setup report of `mtl inspect`: backbone blocks, what each freeze stage freezes, and every
// parameter group's rate, decay, penalties and schedule.
//   std::cout << mtl::training_setup_report(*run.model, run.config, *run.weighting);
#pragma once

#include <string>

#include "mtl/model/multi_task_model.h"
#include "mtl/run/run_config.h"
#include "mtl/weighting/weighting.h"

namespace mtl {

std::string training_setup_report(MultiTaskModelImpl& model, const RunConfig& config, Weighting& weighting);

}  // namespace mtl
