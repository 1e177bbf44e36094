// Predictions of a trained model for every example of a split, as CSV (one row per example: index, then per
// task its prediction and, for classification, the predicted class's probability) or JSONL (one object per
// example; classes with their names, token tags as tag names). In a mixture only the tasks of an example's
// own dataset have predictions; the others' cells stay empty.
//   std::string csv = mtl::format_predictions(run.model, run.tasks, *run.data->open(mtl::Split::kTest), 1024, false);
#pragma once

#include <string>
#include <vector>

#include "mtl/core/task.h"
#include "mtl/data/dataset.h"
#include "mtl/model/multi_task_model.h"

namespace mtl {

/// The predictions of `model` on `data` in `eval_batch_size` batches, as CSV or (jsonl) JSON lines.
std::string format_predictions(MultiTaskModel& model, const std::vector<TaskSpec>& tasks, const Dataset& data,
                               int64_t eval_batch_size, bool jsonl);

}  // namespace mtl
