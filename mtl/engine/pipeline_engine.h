// Pipeline model parallelism (`engine.model_parallel: pipeline`, GPipe: Huang et al. 2019): the backbone's
// stages (Backbone::num_stages, e.g. an MLP's layers, LeNet's convolutions, a Transformer's blocks) are split into
// `model_threads` contiguous groups of about equal parameter count, one thread each; every shard of the batch is
// cut into micro-batches that flow through the groups. Forward (fill): thread s runs micro-batch m as soon as
// thread s-1 has passed it on; the last thread also runs the heads and the losses. The loss weights then come
// from the full-batch losses; backward (drain): the last thread backpropagates sum_t w_t L_t of each micro-batch,
// and each thread passes the gradient of its input back to the one before. Each thread sums its parameters'
// gradients over the micro-batches in a fixed order: the gradients are the whole batch's (the serial engine's),
// deterministically. `threads / model_threads` pipelines run data-parallel shards of each batch.
// Hard parameter sharing over a staged backbone without BatchNorm (micro-batches would change its statistics);
// heads that read the pooled features; loss-based weighting methods.
//
//   EngineOptions o;
//   o.threads = 2; o.model_parallel = ModelParallel::kPipeline; o.micro_batches = 8;
//   auto grads = mtl::make_pipeline_engine(model, tasks, weighting, o);
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "mtl/engine/engine.h"
#include "mtl/engine/reducer.h"

namespace mtl {

/// Why `model` cannot run as a pipeline of `stages` threads ("" when it can): not hps, a backbone without stages
/// or with fewer stages than threads, BatchNorm buffers, heads that read per-token features or feature maps.
std::string pipeline_unsupported_reason(const MultiTaskModelImpl& model, int stages);

/// The first stage of each of `groups` contiguous groups of stages with about equal parameter counts
/// (`stage_params[i]`: stage i's), and the number of stages at the end: {0, ..., stage_params.size()}.
std::vector<int64_t> split_stages(const std::vector<int64_t>& stage_params, int groups);

/// Throws std::invalid_argument with pipeline_unsupported_reason, or when the weighting method is not loss-based.
std::unique_ptr<GradientEngine> make_pipeline_engine(MultiTaskModel model, const std::vector<TaskSpec>& tasks,
                                                     Weighting& weighting, EngineOptions options,
                                                     std::unique_ptr<GradientReducer> reducer = nullptr);

}  // namespace mtl
