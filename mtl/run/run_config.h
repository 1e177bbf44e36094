// RunConfig: a run's YAML file as plain structs, one per section, parsed and validated with file:line:col
// errors. Parsing builds nothing, opens no data and touches no global state; the assembler
// (mtl/run/assembler.h) turns a RunConfig into the run's objects. Sections whose meaning depends on a
// registered component (the dataset, backbone, head, loss, metric and weighting method options) are kept as
// ConfigNode views and read by that component's `XOptions::from_config` when the assembler builds it; every
// other section is read here. RunConfig lives in mtl/run rather than mtl/config because its sections are the
// components' own option structs (OptimizerOptions in mtl/optim, FreezeOptions in mtl/model, ...), and
// mtl/config sits below all of them.
//
//   mtl::RunConfig rc = mtl::parse_run_config(mtl::Config::load("configs/multi_fashion.yaml", {"trainer.epochs=3"}));
//   rc.trainer.epochs;  rc.engine.threads;  rc.tasks[0].name;  rc.weighting.method;
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "mtl/config/config_node.h"
#include "mtl/data/sampler.h"
#include "mtl/dist/options.h"
#include "mtl/engine/engine.h"
#include "mtl/meta/meta_gradient.h"
#include "mtl/model/freezing.h"
#include "mtl/optim/optimizer.h"
#include "mtl/run/model_init.h"

namespace mtl {

/// The training loop (`trainer:` section, except thread counts, which are the engine's).
struct TrainerOptions {
  int64_t epochs = 10;
  int64_t max_steps = 0;            // 0 = no limit; else stop after this many optimizer steps
  int64_t batch_size = 256;
  int64_t eval_batch_size = 1024;
  int64_t loader_workers = 1;       // threads collating batches ahead of the engine
  int64_t prefetch = 4;             // batches prepared ahead
  int64_t seed = 0;                 // data order, initial weights (and the engine's dropout, EngineOptions::seed)
  std::string run_dir;              // default runs/<config name>
  int64_t eval_interval = 1;        // epochs between evaluations on the test split (0 = only at the end)
  int64_t checkpoint_interval = 0;  // optimizer steps between checkpoints (0 = at the end of each epoch)
  int64_t log_interval = 50;        // optimizer steps between metrics-log lines
  bool log_weights = true;          // a `weights` line (task weights and losses) after every step
  bool deterministic = true;
  bool drop_last = false;
  bool length_bucketing = true;     // text data: batches of similar lengths (less padding)
  /// `resume: auto`: a run whose run_dir already holds a checkpoint continues from it (restarts by torchrun
  /// --max_restarts, requeued scheduler jobs); `never` (default): a fresh run_dir (base-2, ...) every time.
  bool auto_resume = false;
  /// `on_nonfinite`: a step with a non-finite loss or gradient is never applied; `stop` (default) ends the run
  /// with an error naming the task, the step and the last good checkpoint; `skip` drops the step (logged as a
  /// `skipped` line) and stops only after `max_skipped` consecutive skips.
  bool skip_nonfinite = false;
  int64_t max_skipped = 10;
  /// Set when `precision: bf16` was asked for on a CPU without bfloat16 instructions: the run trains in
  /// float32 and shows this warning (EngineOptions::precision says what is used).
  std::string precision_warning;
};

/// `data:` (one dataset) or `datasets:` (named datasets whose tasks a task sampler interleaves).
struct DataConfig {
  std::vector<std::string> names;  // `datasets:` keys in order; empty with `data:`
  std::vector<ConfigNode> nodes;   // each dataset's component node (one with `data:`)
  TaskSamplerOptions task_sampler; // how steps draw datasets (with `datasets:`)
  bool mixture() const { return !names.empty(); }
};

/// One `tasks.<name>` section; the label, head, loss and metrics are checked against the data's schema by
/// the assembler.
struct TaskConfig {
  std::string name;
  std::string dataset;    // the `datasets:` entry it learns from; empty with `data:`
  std::string label;      // the label field (default: the task's name)
  double weight = 1.0;
  ConfigNode node;        // the section itself (head type and options, loss, metrics)
};

struct ModelConfig {
  ConfigNode architecture;        // model.architecture (component node; hps by default)
  ConfigNode backbone;            // model.backbone (component node)
  std::optional<ModelInit> init;  // model.init
};

struct WeightingConfig {
  std::string method = "ew";
  ConfigNode node;  // the `weighting:` section (the method's options)
};

struct BaselinesConfig {
  /// Single-task baselines file for delta-m: a path relative to the working directory like trainer.run_dir;
  /// `auto` (the default) = default_baselines_path(run_dir); empty for `none`.
  std::string path;
  bool explicit_path = false;  // the path was given, not `auto`
};

/// `logging:`: where the metrics go besides <run_dir>/metrics.jsonl.
struct LoggingOptions {
  bool tensorboard = false;  // <run_dir>/tensorboard/: TensorBoard event files with every metrics-log value
};

/// `sweep:` (read by `mtl sweep`, ignored by `mtl train`): the same settings as its flags (mtl/sweep/sweep.h).
struct SweepConfig {
  std::vector<std::string> grid;  // "key=v1,v2,..." per axis
  int64_t seeds = 1;              // runs per combination: trainer.seed, trainer.seed + 1, ...
  std::string dir;                // "" = <trainer.run_dir>.sweep
};

/// `meta:`: meta-learning across tasks instead of multi-task training (mtl/run/meta_trainer.h).
struct MetaConfig {
  bool enabled = false;            // the config has a `meta:` section
  InnerLoop inner;                 // method, inner_steps 5, inner_lr 0.01
  int64_t meta_batch_tasks = 4;    // episodes per meta step
  int64_t steps = 1000;            // meta steps
  EpisodeOptions episodes;         // ways 0, support 1, query 15, classes (meta-training's)
  std::vector<std::string> adapt{"heads"};  // what the inner loop adapts: heads, all, or parameter-name patterns
  std::vector<int64_t> test_classes;        // held-out classes of the evaluation episodes (test split)
  // meta.classes and meta.test_classes as written (class indices or names); the assembler resolves them into
  // episodes.classes and test_classes against the task's label (classes left out: every class but the test ones).
  std::vector<std::string> class_keys, test_class_keys;
  int64_t test_episodes = 200;
  int64_t test_inner_steps = 5;    // adaptation steps at evaluation (default: inner_steps)
  int64_t eval_interval = 0;       // meta steps between evaluations (0: only at the end)
  ConfigNode node;
};

struct RunConfig {
  Config source;     // the YAML as loaded: locations, the resolved config, unknown-key check
  std::string name;  // the config file's stem
  TrainerOptions trainer;
  LoggingOptions logging;
  EngineOptions engine;
  ConfigNode engine_node;          // `engine:`, for errors found once the model is built
  DistributedOptions distributed;  // `distributed:` (used only when a launcher starts several processes)
  OptimizerOptions optimizer;
  SchedulerOptions scheduler;
  FreezeOptions freeze;
  ConfigNode freeze_node;
  DataConfig data;
  ConfigNode tokenizer;  // `tokenizer:`, read only when a dataset has text
  std::vector<TaskConfig> tasks;
  ModelConfig model;
  WeightingConfig weighting;
  BaselinesConfig baselines;
  SweepConfig sweep;
  MetaConfig meta;

  std::vector<std::string> task_names() const;
};

struct ParseOptions {
  /// Check that model.init.path exists (off for eval, predict and resume, which load the run's own weights).
  bool check_init_path = true;
};

/// Parses and validates every section; throws mtl::Error (file:line:col, key path, what was expected).
RunConfig parse_run_config(const Config& config, const ParseOptions& options = {});

/// Where `mtl baselines` puts the single-task baselines of a config whose trainer.run_dir is `run_dir`:
/// <run_dir>.baselines/baselines.json (next to the multi-task runs, never inside one).
std::string default_baselines_path(const std::string& run_dir);

/// Number of physical cores (falls back to logical CPUs).
int64_t physical_cores();

/// This process's share of the cores, what `threads: auto` and `intra_op_threads: auto` divide: the physical
/// cores over the ranks a launcher started on this machine (LOCAL_WORLD_SIZE: torchrun, `mtl train --nproc`),
/// at least 1. Without a launcher, every physical core.
int64_t process_cores();

}  // namespace mtl
