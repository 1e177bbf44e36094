// Experiment: everything a run needs, built from a Config through the registries.
// build_experiment() parses and validates every section and builds the model, but loads no data, so a
// bad config fails in well under a second, before anything is written.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mtl/config/config_node.h"
#include "mtl/core/task.h"
#include "mtl/data/dataset.h"
#include "mtl/data/sampler.h"
#include "mtl/data/text/tokenizer.h"
#include "mtl/model/freezing.h"
#include "mtl/model/multi_task_model.h"
#include "mtl/optim/optimizer.h"
#include "mtl/optim/param_groups.h"
#include "mtl/weighting/weighting.h"

namespace mtl {

struct TrainerOptions {
  int64_t epochs = 10;
  int64_t max_steps = 0;            // 0 = no limit; else stop after this many optimizer steps
  int64_t batch_size = 256;
  int64_t eval_batch_size = 1024;
  int64_t threads = 0;              // worker threads of the engine (resolved: >= 1)
  int64_t intra_op_threads = 0;     // OpenMP/BLAS threads per worker (resolved: >= 1)
  int64_t loader_workers = 1;       // threads collating batches ahead of the engine
  int64_t prefetch = 4;             // batches prepared ahead
  int64_t seed = 0;
  std::string run_dir;              // default runs/<config name>
  int64_t eval_interval = 1;        // epochs between evaluations on the test split (0 = only at the end)
  int64_t checkpoint_interval = 0;  // optimizer steps between checkpoints (0 = at the end of each epoch)
  int64_t log_interval = 50;        // optimizer steps between metrics-log lines
  bool log_weights = true;          // a `weights` line (task weights and losses) after every step
  bool deterministic = true;
  bool drop_last = false;
  bool length_bucketing = true;     // text data: batches of similar lengths (less padding)
  // engine section
  std::string mode = "sync";       // sync: one optimizer step per batch; async: Hogwild! lock-free updates
  std::string balance = "static";  // static: equal shards; dynamic: shards follow each worker's speed
  bool lookahead = true;           // async: momentum look-ahead for stale gradients
};

struct Experiment {
  Config config;
  std::string name;  // the config file's stem
  /// The `data:` dataset, or a MixtureSource of the `datasets:` entries (targets named "<dataset>.<label>").
  std::shared_ptr<DatasetSource> data;
  std::vector<std::string> dataset_names;  // `datasets:` keys in order; empty with `data:`
  TaskSamplerOptions task_sampler;          // how steps draw datasets (with `datasets:`)
  /// The run's tokenizer when a dataset has text (trained on the training texts, or loaded from the run).
  std::shared_ptr<Tokenizer> tokenizer;
  DatasetSchema schema;
  std::vector<TaskSpec> tasks;
  MultiTaskModel model{nullptr};
  /// Builds another model of the same architecture (fresh weights; the global RNG is left untouched):
  /// the parallel engine's per-thread replicas for models with buffers.
  std::function<MultiTaskModel()> make_model;
  std::unique_ptr<Weighting> weighting;
  OptimizerOptions optimizer;
  SchedulerOptions scheduler;
  FreezeOptions freeze;  // which parameters train, per epoch (the `freeze:` section)
  TrainerOptions trainer;
  /// Single-task baselines file for delta-m (top-level key `baselines`: a path relative to the working
  /// directory like trainer.run_dir; `auto`, the default, = default_baselines_path(run_dir); `none`).
  /// Empty for `none`. `mtl baselines` writes it; evaluations read it when it exists.
  std::string baselines;
  bool baselines_explicit = false;  // the path was given, not `auto`
  /// What `model.init` loaded ("<file>: loaded N tensors; ..."); empty when the model started fresh.
  std::string init_report;

  std::vector<std::string> task_names() const;
};

struct BuildOptions {
  /// A run directory whose saved tokenizer and data vocabularies (class names) to use instead of deriving
  /// them from the training data: eval, predict and resume must see the ids the model was trained with.
  std::string artifacts_dir;
};

/// Builds everything from `config`; throws mtl::Error (with file:line:col) for any bad or unknown key.
Experiment build_experiment(const Config& config, const BuildOptions& options = {});

/// The run's parameter groups (and its optimizer) over the model's parameters and the weighting method's.
ParamGroups make_param_groups(const Experiment& ex);

/// Writes the run's tokenizer (<run_dir>/tokenizer) and data vocabularies (<run_dir>/data) for
/// build_experiment's artifacts_dir; nothing when the data has no text or derived vocabularies.
void save_data_artifacts(const Experiment& ex, const std::string& run_dir);

/// Where `mtl baselines` puts the single-task baselines of a config whose trainer.run_dir is `run_dir`:
/// <run_dir>.baselines/baselines.json (next to the multi-task runs, never inside one).
std::string default_baselines_path(const std::string& run_dir);

/// Number of physical cores (falls back to logical CPUs).
int64_t physical_cores();

}  // namespace mtl
