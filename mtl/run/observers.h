// Observers of the training loop (mtl/run/trainer.h): each sees the position and every step's result, the
// start and the end of every epoch, and does one job. The trainer owns them and calls them in order.
//   MetricsLogObserver  `weights`, `train`, `diagnostics` and `epoch` lines of <run_dir>/metrics.jsonl
//   ProgressObserver    the progress display on stderr
//   Checkpointer        <run_dir>/checkpoint.pt every checkpoint_interval steps (the trainer also saves at
//                       epoch ends and on Ctrl-C)
//   Evaluator           test-split evaluations (every eval_interval epochs and at the end), with delta-m
//   FreezeSchedule      applies freeze.schedule at epoch starts and tells the engine
// The weighting method's epoch hook (DWA) is called by the trainer with the epoch's mean losses.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mtl/engine/engine.h"
#include "mtl/io/checkpoint.h"
#include "mtl/io/metrics_log.h"
#include "mtl/model/freezing.h"
#include "mtl/run/baselines.h"
#include "mtl/run/evaluate.h"
#include "mtl/run/progress.h"
#include "mtl/run/run_config.h"

namespace mtl {

/// What an epoch's end reports.
struct EpochEnd {
  std::vector<double> mean_losses;  // per task, over the epoch's examples that had its labels
  double seconds = 0.0;
  double examples_per_second = 0.0;  // examples trained over `seconds` (all processes' examples: global batches)
  double data_wait_share = 0.0;     // share of the epoch spent waiting for the loader
  bool last = false;                // the run's last epoch
};

class TrainObserver {
 public:
  virtual ~TrainObserver() = default;
  virtual void epoch_started(const TrainPosition& pos, int64_t epoch_batches) {}
  virtual void step_done(const TrainPosition& pos, const StepResult& result) {}
  /// Only for complete epochs (not for one cut short by max_steps or Ctrl-C).
  virtual void epoch_done(const TrainPosition& pos, const EpochEnd& end) {}
};

/// A `diagnostics` line (StepResult::diagnostics): per present task `<task>/grad_norm` and `<task>/weight`,
/// `cosine/<a>/<b>` per pair of present tasks (null where a gradient is zero), `conflict_share`,
/// `combined_norm`, and `representation` (1: the rows were representation gradients).
MetricValues diagnostics_values(const std::vector<std::string>& tasks, const StepResult& r);

class MetricsLogObserver : public TrainObserver {
 public:
  MetricsLogObserver(MetricsLog& log, const std::vector<std::string>& tasks, const TrainerOptions& trainer)
      : log_(log), tasks_(tasks), log_weights_(trainer.log_weights), interval_(trainer.log_interval) {}
  void step_done(const TrainPosition& pos, const StepResult& r) override;
  void epoch_done(const TrainPosition& pos, const EpochEnd& end) override;

 private:
  MetricsLog& log_;
  std::vector<std::string> tasks_;
  bool log_weights_;
  int64_t interval_;
};

class ProgressObserver : public TrainObserver {
 public:
  ProgressObserver(bool enabled, const std::vector<std::string>& tasks, int64_t epochs)
      : progress_(enabled, Progress::stderr_is_tty()), tasks_(tasks), epochs_(epochs) {}
  void epoch_started(const TrainPosition& pos, int64_t epoch_batches) override;
  void step_done(const TrainPosition& pos, const StepResult& r) override;
  /// Closes the epoch's line ("interrupted" or the epoch's losses).
  void end_epoch(const TrainPosition& pos, const std::string& note = "");

 private:
  std::string loss_info(const TrainPosition& pos) const;
  Progress progress_;
  std::vector<std::string> tasks_;
  int64_t epochs_;
  int64_t samples_ = 0;
};

class Checkpointer : public TrainObserver {
 public:
  Checkpointer(std::string path, CheckpointRefs refs, int64_t interval)
      : path_(std::move(path)), refs_(refs), interval_(interval) {}
  void step_done(const TrainPosition& pos, const StepResult& r) override {
    if (interval_ > 0 && pos.step % interval_ == 0) save(pos);
  }
  void save(const TrainPosition& pos) {
    TrainPosition at = pos;
    if (log_ != nullptr && log_->is_open()) at.log_bytes = log_->bytes();
    save_checkpoint(path_, refs_, at);
    saved_step_ = pos.step;
  }
  /// The run's metrics log, whose size each checkpoint records (TrainPosition::log_bytes).
  void record_log_size_of(const MetricsLog* log) { log_ = log; }
  TrainPosition load() {
    TrainPosition pos = load_checkpoint(path_, refs_);
    saved_step_ = pos.step;
    return pos;
  }
  /// The step of the checkpoint on disk from this run (saved or resumed), -1 when there is none yet.
  int64_t saved_step() const { return saved_step_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  CheckpointRefs refs_;
  int64_t interval_;
  const MetricsLog* log_ = nullptr;
  int64_t saved_step_ = -1;
};

class Evaluator : public TrainObserver {
 public:
  Evaluator(MultiTaskModel model, const std::vector<TaskSpec>& tasks, std::shared_ptr<Dataset> test,
            int64_t batch_size, int64_t interval, std::optional<Baselines> baselines, MetricsLog& log, bool print,
            ProcessGroup* group = nullptr)
      : model_(std::move(model)), tasks_(tasks), test_(std::move(test)), batch_size_(batch_size),
        interval_(interval), baselines_(std::move(baselines)), log_(log), print_(print), group_(group) {}
  void epoch_done(const TrainPosition& pos, const EpochEnd& end) override;
  /// Evaluates now (and logs), unless the last epoch's end already did.
  void evaluate_at_end(const TrainPosition& pos);
  /// A run resumed from the checkpoint its last epoch's end wrote: that epoch's evaluation is in the log
  /// already (it came before the checkpoint), so evaluate_at_end evaluates again for the result without
  /// writing a second line.
  void final_evaluation_logged() { logged_at_end_ = true; }
  const EvalResult& last() const { return last_; }

 private:
  EvalResult run(const TrainPosition& pos, bool log = true);
  MultiTaskModel model_;
  const std::vector<TaskSpec>& tasks_;
  std::shared_ptr<Dataset> test_;
  int64_t batch_size_, interval_;
  std::optional<Baselines> baselines_;
  MetricsLog& log_;
  bool print_;
  ProcessGroup* group_;  // a distributed run: each rank evaluates its share (mtl::evaluate)
  EvalResult last_;
  bool evaluated_at_end_ = false;
  bool logged_at_end_ = false;
};

class FreezeSchedule : public TrainObserver {
 public:
  FreezeSchedule(MultiTaskModel model, const FreezeOptions& freeze, Engine& engine, MetricsLog& log, bool print)
      : model_(std::move(model)), freeze_(freeze), engine_(engine), log_(log), print_(print) {}
  void epoch_started(const TrainPosition& pos, int64_t epoch_batches) override;

 private:
  MultiTaskModel model_;
  const FreezeOptions& freeze_;
  Engine& engine_;
  MetricsLog& log_;
  bool print_;
  const FreezeSetting* in_force_ = nullptr;
};

}  // namespace mtl
