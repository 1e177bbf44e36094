// mtl: multi-task learning on LibTorch. The one header an application needs:
//   mtl::Run run = mtl::assemble(mtl::Config::load("configs/multi_fashion.yaml"));
//   mtl::TrainSummary s = mtl::train(run, {});
//   std::cout << mtl::format_eval_table(s.final_eval);
#pragma once

#include "backbones/backbone.h"
#include "heads/head.h"
#include "mtl/config/config_node.h"
#include "mtl/core/batch.h"
#include "mtl/core/error.h"
#include "mtl/core/registry.h"
#include "mtl/core/task.h"
#include "mtl/data/dataset.h"
#include "mtl/engine/engine.h"
#include "mtl/run/evaluate.h"
#include "mtl/run/assembler.h"
#include "mtl/run/trainer.h"
#include "mtl/io/checkpoint.h"
#include "mtl/io/safetensors.h"
#include "mtl/io/weight_import.h"
#include "mtl/metrics/metric.h"
#include "mtl/model/freezing.h"
#include "mtl/model/multi_task_model.h"
#include "mtl/optim/param_groups.h"
#include "mtl/weighting/weighting.h"
