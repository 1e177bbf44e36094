// The assembler: RunConfig -> the run's objects, each built by one function that takes only what it uses.
// Order: data sources (no file is opened yet), tokenizer (trained on the training texts, or loaded from a
// run), tasks (labels, heads, losses and metrics checked against the data's schema), weighting method, model
// (initial weights from the run's own generator, freezing, model.init import) and parameter groups. Every
// config check happens here, before anything is written, so a bad config fails in well under a second.
//
//   mtl::Run run = mtl::assemble(mtl::parse_run_config(mtl::Config::load("configs/multi_fashion.yaml")));
//   mtl::TrainSummary s = mtl::train(run, {});
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "mtl/core/task.h"
#include "mtl/data/dataset.h"
#include "mtl/data/text/tokenizer.h"
#include "mtl/model/multi_task_model.h"
#include "mtl/optim/param_groups.h"
#include "mtl/run/run_config.h"
#include "mtl/weighting/weighting.h"

namespace mtl {

struct AssembleOptions {
  /// A run directory whose saved tokenizer and data vocabularies (class names) to use instead of deriving
  /// them from the training data: eval, predict and resume must see the ids the model was trained with.
  std::string artifacts_dir;
};

/// The `data:` dataset, or a MixtureSource of the `datasets:` entries (targets named "<dataset>.<label>").
std::shared_ptr<DatasetSource> build_data(const DataConfig& data, const std::string& artifacts_dir);

/// The run's tokenizer when a dataset has text (set on `data`), else null.
std::shared_ptr<Tokenizer> build_tokenizer(const ConfigNode& tokenizer, DatasetSource& data,
                                           const std::string& artifacts_dir);

/// Each task's label, head type, loss and metrics, checked against `data`'s schema.
std::vector<TaskSpec> build_tasks(const std::vector<TaskConfig>& tasks, const DataConfig& data_config,
                                  const DatasetSource& data);

/// The weighting method, checked against what the engine supports.
std::unique_ptr<Weighting> build_weighting(const WeightingConfig& config, const std::vector<TaskSpec>& tasks,
                                           const EngineOptions& engine);

/// Builds models of the config's architecture with the initial weights of `seed` (the same every call).
ModelFactory model_factory(const ModelConfig& model, const std::vector<TaskConfig>& task_configs,
                           const std::vector<TaskSpec>& tasks, const DatasetSchema& schema, uint64_t seed);

/// The run's parameter groups (and its optimizer) over the model's parameters and the weighting method's.
ParamGroups build_param_groups(const OptimizerOptions& optimizer, const SchedulerOptions& scheduler,
                               MultiTaskModelImpl& model, Weighting& weighting);

/// Everything a run needs, assembled.
struct Run {
  RunConfig config;
  std::shared_ptr<DatasetSource> data;
  std::shared_ptr<Tokenizer> tokenizer;
  DatasetSchema schema;
  std::vector<TaskSpec> tasks;
  MultiTaskModel model{nullptr};
  ModelFactory make_model;  // another model of the same architecture and initial weights (replicas)
  std::unique_ptr<Weighting> weighting;
  /// What `model.init` loaded ("<file>: loaded N tensors; ..."); empty when the model started fresh.
  std::string init_report;

  std::vector<std::string> task_names() const { return config.task_names(); }
};

/// Builds every part in the order above; throws mtl::Error (with file:line:col) for any bad or unknown key.
Run assemble(const RunConfig& config, const AssembleOptions& options = {});
/// parse_run_config + assemble (model.init's path is checked unless artifacts come from a run).
Run assemble(const Config& config, const AssembleOptions& options = {});

/// Writes the run's tokenizer (<run_dir>/tokenizer) and data vocabularies (<run_dir>/data) for
/// AssembleOptions::artifacts_dir; nothing when the data has no text or derived vocabularies.
void save_data_artifacts(const DatasetSource& data, const Tokenizer* tokenizer, const std::string& run_dir);

}  // namespace mtl
