#include "mtl/run/trainer.h"

#include <chrono>
#include <csignal>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <optional>

#include "mtl/core/allocator.h"
#include "mtl/core/stop_signal.h"
#include "mtl/data/loader.h"
#include "mtl/dist/process_group.h"
#include "mtl/dist/process_reducer.h"
#include "mtl/engine/shard_plan.h"
#include "mtl/io/atomic_file.h"
#include "mtl/io/dir_lock.h"
#include "mtl/run/batch_plan.h"
#include "mtl/run/observers.h"
#include "mtl/run/run_dir.h"
#include "mtl/run/thread_plan.h"

namespace fs = std::filesystem;

namespace mtl {

namespace {

using Clock = std::chrono::steady_clock;

// This process's place among the run's processes: rank r trains on rows [off[r], off[r + 1]) of every global
// batch, off = shard_offsets(batch rows, world size), the same contiguous split a process makes between its
// worker threads; so 2 processes x 1 thread follow the optimisation of 1 process x 2 threads.
struct Ranks {
  std::shared_ptr<ProcessGroup> group;
  int rank() const { return group ? group->rank() : 0; }
  int world() const { return group ? group->world_size() : 1; }
  bool leader() const { return rank() == 0; }
  std::vector<int64_t> part(const std::vector<int64_t>& batch) const {
    if (!group) return batch;
    const std::vector<int64_t> off = shard_offsets(static_cast<int64_t>(batch.size()), world());
    return std::vector<int64_t>(batch.begin() + off[rank()], batch.begin() + off[rank() + 1]);
  }
};

// Everything the loop drives; built once per train() call.
struct Loop {
  Run& run;
  const TrainerOptions& tr;
  BatchPlan plan;
  std::shared_ptr<Dataset> train_data;
  Ranks ranks;
  int64_t total_steps = 0, epochs = 0;
  TrainPosition pos;
  std::unique_ptr<Engine> engine;
  std::vector<TrainObserver*> observers;
  ProgressObserver* progress = nullptr;
  Checkpointer* checkpointer = nullptr;
  int64_t skipped = 0;      // steps not applied (trainer.on_nonfinite: skip)
  int64_t epoch_rows = 0;  // examples trained in this process's part of the current epoch (for examples/s)

  MetricsLog* log = nullptr;
  bool show = false;  // progress on stderr (a warning then starts on a line of its own)
  int64_t consecutive_skips = 0;

  // A step the engine did not apply (StepResult::nonfinite): trainer.on_nonfinite says stop or skip.
  void not_applied(const StepResult& r) {
    const std::string what = "step " + std::to_string(pos.step) + ": " + r.nonfinite;
    const std::string last_good =
        checkpointer != nullptr && checkpointer->saved_step() >= 0
            ? "the last good checkpoint is " + checkpointer->path() + " (step " +
                  std::to_string(checkpointer->saved_step()) + ")"
            : "no checkpoint was written yet";
    if (!tr.skip_nonfinite)
      throw Error(run.config.source.file(), what + "; stopped before the optimizer step (trainer.on_nonfinite: stop); " +
                                                last_good + " (lower optimizer.lr, clip gradients or check the data)");
    ++consecutive_skips;
    ++skipped;
    if (log) log->write("skipped", pos.step, pos.epoch,
                        {{"consecutive", double(consecutive_skips)}, {"total", double(skipped)}});
    if (ranks.leader())
      std::cerr << (show ? "\n" : "") << "mtl: warning: " << what << "; step skipped (trainer.on_nonfinite: skip)\n";
    if (consecutive_skips >= tr.max_skipped)
      throw Error(run.config.source.file(), what + "; stopped after " + std::to_string(consecutive_skips) +
                                                " consecutive skipped steps (trainer.max_skipped: " +
                                                std::to_string(tr.max_skipped) + "); " + last_good);
  }

  // Bookkeeping of one finished step, then the observers.
  void record(const StepResult& r) {
    ++pos.step;
    ++pos.batch_in_epoch;
    if (!r.nonfinite.empty()) {  // the batch is used up; the weights, sums and observers see nothing of it
      not_applied(r);
      return;
    }
    consecutive_skips = 0;
    epoch_rows += r.examples;
    for (size_t t = 0; t < r.present.size(); ++t) {
      if (!r.present[t]) continue;
      pos.epoch_loss_sum[t] += r.losses[t] * r.examples;
      pos.epoch_examples[t] += r.examples;
    }
    if (!std::isfinite(r.total_loss))
      throw Error(run.config.source.file(), "training diverged: the loss is " + std::to_string(r.total_loss) +
                                                " at step " + std::to_string(pos.step) +
                                                " (lower optimizer.lr or check the data)");
    for (auto* o : observers) o->step_done(pos, r);
  }

  // Feeds the rest of the epoch to the engine; false when Ctrl-C stopped it (after the results in flight).
  bool run_epoch(const std::vector<std::vector<int64_t>>& batches, double& wait_seconds) {
    const int64_t last = std::min<int64_t>(static_cast<int64_t>(batches.size()),
                                           pos.batch_in_epoch + (total_steps - pos.step));
    std::vector<std::vector<int64_t>> todo;
    std::vector<int64_t> whole;  // rows of each global batch
    for (int64_t b = pos.batch_in_epoch; b < last; ++b) {
      whole.push_back(static_cast<int64_t>(batches[b].size()));
      todo.push_back(ranks.part(batches[b]));
    }
    Loader loader(train_data, std::move(todo), LoaderOptions{tr.loader_workers, tr.prefetch});
    Batch batch;
    int64_t submitted = pos.step;  // the async engine runs ahead of the finished steps
    bool stop = false;
    for (size_t k = 0; !stop && loader.next(batch); ++k) {
      if (ranks.group) batch.global_size = whole[k];
      for (const StepResult& r : engine->step(batch, StepContext{submitted++, pos.epoch, {}})) record(r);
      stop = stop_requested();  // the first Ctrl-C or SIGTERM: finish this step, checkpoint, stop
      if (ranks.group) stop = ranks.group->any(stop);  // every rank stops after the same step
    }
    for (const StepResult& r : engine->finish()) record(r);
    wait_seconds = loader.wait_seconds();
    return !stop;
  }

  // Every batch of the current epoch was trained but the epoch did not end (a run stopped or killed between its
  // last step and the epoch's end): the resumed run ends it (epoch line, evaluation, checkpoint) before anything.
  bool epoch_awaits_its_end() const {
    return pos.batch_in_epoch > 0 && pos.batch_in_epoch >= static_cast<int64_t>(plan.epoch(pos.epoch).size());
  }

  void end_epoch(double seconds, double wait_seconds) {
    const size_t T = run.tasks.size();
    EpochEnd end;
    end.mean_losses.assign(T, 0.0);
    for (size_t t = 0; t < T; ++t)
      end.mean_losses[t] = pos.epoch_examples[t] > 0 ? pos.epoch_loss_sum[t] / pos.epoch_examples[t] : 0.0;
    end.seconds = seconds;
    end.examples_per_second = static_cast<double>(epoch_rows) / std::max(1e-9, seconds);
    end.data_wait_share = wait_seconds / std::max(1e-9, seconds);
    end.last = pos.step >= total_steps;
    for (auto* o : observers) o->epoch_done(pos, end);
    run.weighting->on_epoch_end(end.mean_losses);
    ++pos.epoch;
    pos.batch_in_epoch = 0;
    epoch_rows = 0;
    std::fill(pos.epoch_loss_sum.begin(), pos.epoch_loss_sum.end(), 0.0);
    std::fill(pos.epoch_examples.begin(), pos.epoch_examples.end(), 0.0);
  }
};

// `trainer.threads: auto`: the plan a resumed run recorded, else the fastest on the next batch of the plan
// (mtl/run/thread_plan.h); recorded in the position, so checkpoints keep it.
EngineOptions choose_thread_plan(Loop& loop, EngineOptions engine, std::vector<ThreadPlan>& probed) {
  if (!engine.probe_plan || engine.async) return engine;
  if (loop.pos.workers == 0) {
    const std::vector<std::vector<int64_t>> batches = loop.plan.epoch(loop.pos.epoch);
    if (batches.empty()) return engine;
    const size_t next = std::min(static_cast<size_t>(loop.pos.batch_in_epoch), batches.size() - 1);
    probed = probe_thread_plans(loop.run, loop.train_data->batch(loop.ranks.part(batches[next])),
                                engine.threads * engine.intra_op_threads);
    loop.pos.workers = probed.front().workers;
    loop.pos.intra_op_threads = probed.front().intra_op_threads;
    if (loop.ranks.group) {  // every rank runs rank 0's plan (dropout streams follow the worker count)
      std::vector<at::Tensor> plan{at::tensor({loop.pos.workers, loop.pos.intra_op_threads}, at::kLong)};
      loop.ranks.group->broadcast(plan, 0);
      loop.pos.workers = plan[0][0].item<int64_t>();
      loop.pos.intra_op_threads = plan[0][1].item<int64_t>();
    }
  }
  engine.threads = static_cast<int>(loop.pos.workers);
  engine.intra_op_threads = static_cast<int>(loop.pos.intra_op_threads);
  configure_torch_threads(engine, loop.tr.deterministic);
  return engine;
}

// A distributed run's `collectives` lines, after each epoch and at the end of training: the bytes this rank put
// into collectives per step since the last line.
class CollectiveBytes : public TrainObserver {
 public:
  CollectiveBytes(const ProcessGroup& group, MetricsLog& log, const TrainPosition& start)
      : group_(group), log_(log), bytes_(group.payload_bytes()), step_(start.step) {}
  void epoch_done(const TrainPosition& pos, const EpochEnd&) override { flush(pos); }
  void flush(const TrainPosition& pos) {
    if (pos.step <= step_) return;
    log_.write("collectives", pos.step, pos.epoch,
               {{"bytes_per_step", double(group_.payload_bytes() - bytes_) / double(pos.step - step_)}});
    bytes_ = group_.payload_bytes();
    step_ = pos.step;
  }

 private:
  const ProcessGroup& group_;
  MetricsLog& log_;
  int64_t bytes_ = 0, step_ = 0;
};

// Every rank starts from rank 0's parameters and buffers (a resumed run's, or its fresh initialisation).
void broadcast_model(ProcessGroup& group, MultiTaskModel& model) {
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> state;
  for (const auto& p : model->parameters()) state.push_back(p.detach());
  for (const auto& b : model->buffers()) state.push_back(b);
  group.broadcast(state, 0);
}

// The epochs up to the run's last step, a checkpoint (rank 0) after each; false when Ctrl-C stopped them.
bool train_epochs(Loop& loop, Checkpointer& checkpointer, ProgressObserver& progress, TrainSummary& summary,
                  bool show) {
  while (loop.pos.step < loop.total_steps || loop.epoch_awaits_its_end()) {
    auto epoch_start = Clock::now();
    auto batches = loop.plan.epoch(loop.pos.epoch);
    for (auto* o : loop.observers) o->epoch_started(loop.pos, static_cast<int64_t>(batches.size()));
    double wait = 0.0;
    if (!loop.run_epoch(batches, wait)) {
      if (loop.ranks.leader()) checkpointer.save(loop.pos);
      progress.end_epoch(loop.pos, "interrupted");
      if (show)
        std::cerr << (last_stop_signal() == SIGTERM ? "stopped by SIGTERM" : "interrupted")
                  << ": checkpoint written to " << checkpointer.path() << "; continue with --resume " << summary.run_dir
                  << "\n";
      summary.interrupted = true;
      summary.steps = loop.pos.step;
      return false;
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - epoch_start).count();
    summary.epoch_seconds.push_back(seconds);
    summary.data_wait_seconds += wait;
    progress.end_epoch(loop.pos);
    if (loop.pos.batch_in_epoch >= static_cast<int64_t>(batches.size())) loop.end_epoch(seconds, wait);
    if (loop.ranks.leader()) checkpointer.save(loop.pos);
  }
  return true;
}

// The engine of this run: its thread plan (timed when `threads: auto`, then printed and logged), and in a
// distributed run this rank's first shard and the reducer across processes.
std::unique_ptr<Engine> build_engine(Loop& loop, ParamGroups& groups, MetricsLog& log, bool show) {
  Run& run = loop.run;
  std::vector<ThreadPlan> probed;
  EngineOptions engine = choose_thread_plan(loop, run.config.engine, probed);
  if (!probed.empty()) {
    if (show) std::cerr << "mtl: threads auto: " << describe_thread_plans(probed) << "\n";
    MetricValues plan{{"workers", engine.threads}, {"intra_op_threads", engine.intra_op_threads}};
    for (const ThreadPlan& p : probed)
      plan.push_back({"probe_ms_" + std::to_string(p.workers) + "x" + std::to_string(p.intra_op_threads), p.step_ms});
    log.write("thread_plan", loop.pos.step, loop.pos.epoch, plan);
  }
  if (loop.ranks.group) {
    engine.first_shard = loop.ranks.rank() * engine.threads;
    engine.make_reducer = [group = loop.ranks.group] { return std::make_unique<ProcessReducer>(group); };
  }
  return make_engine(run.model, run.tasks, *run.weighting, groups, engine, run.make_model);
}

}  // namespace

std::string auto_resume_dir(const TrainerOptions& trainer) {
  if (!trainer.auto_resume || !fs::exists(fs::path(trainer.run_dir) / "checkpoint.pt")) return "";
  return trainer.run_dir;
}

void configure_torch_threads(const EngineOptions& engine, bool deterministic) {
  configure_allocator();
  // The main thread (evaluation, serial work) may use every core the workers use.
  at::set_num_threads(engine.threads * engine.intra_op_threads);
  at::globalContext().setDeterministicAlgorithms(deterministic, /*warn_only=*/true);
}

TrainSummary train(Run& run, const TrainRunOptions& options) {
  const RunConfig& rc = run.config;
  const TrainerOptions& tr = rc.trainer;
  const Ranks ranks{options.group};
  if (ranks.group && rc.engine.async)
    throw Error(rc.source.file(), "engine.mode: async trains in one process only; a distributed run needs sync");
  configure_torch_threads(rc.engine, tr.deterministic);
  // Data first: a missing or corrupt file stops the run before anything is written.
  std::shared_ptr<Dataset> train_data = run.data->open(Split::kTrain);
  Loop loop{run, tr, BatchPlan(*train_data, tr, rc.data.task_sampler, rc.source.file()), train_data, ranks};
  if (ranks.group) {
    ranks.group->check_same(rc.source.resolved_yaml(), "configs");
    ranks.group->check_same(options.resume_dir, "runs to resume (see trainer.resume)");
  }
  std::shared_ptr<Dataset> test_data = run.data->open(Split::kTest);
  // Single-task baselines for delta-m: a malformed file stops here too; a stale one is only a note.
  BaselinesLookup baselines = find_baselines(rc);
  if (!baselines.note.empty()) std::cerr << "mtl: note: " << baselines.note << "; delta-m not reported\n";
  if (!tr.precision_warning.empty() && ranks.leader()) std::cerr << "mtl: warning: " << tr.precision_warning << "\n";

  TrainSummary summary;
  // Rank 0 writes the run directory; the others read a resumed run's checkpoint from it and write nothing.
  std::optional<DirLock> lock;
  summary.run_dir = ranks.leader() ? prepare_run_dir(run, options.resume_dir, lock) : options.resume_dir;
  const bool show = options.progress && ranks.leader();
  const int64_t spe = loop.plan.steps_per_epoch();
  loop.total_steps = tr.epochs * spe;
  if (tr.max_steps > 0) loop.total_steps = tr.epochs > 0 ? std::min(loop.total_steps, tr.max_steps) : tr.max_steps;
  loop.epochs = (loop.total_steps + spe - 1) / spe;

  // Parameter groups own the optimizer; frozen parameters stay in their group with no gradient (so no
  // optimizer state) until a freeze.schedule stage unfreezes them.
  ParamGroups groups = build_param_groups(rc.optimizer, rc.scheduler, *run.model, *run.weighting);
  groups.set_horizon(spe, loop.total_steps);
  Checkpointer checkpointer((fs::path(summary.run_dir) / "checkpoint.pt").string(),
                            CheckpointRefs{run.model.get(), &groups.optimizer(), run.weighting.get()},
                            tr.checkpoint_interval);
  if (!options.resume_dir.empty()) {
    loop.pos = checkpointer.load();
    if (show)
      std::cerr << "resuming " << summary.run_dir << " at step " << loop.pos.step << " (epoch " << loop.pos.epoch + 1
                << ")\n";
  }
  if (ranks.group) broadcast_model(*ranks.group, run.model);
  const size_t T = run.tasks.size();
  if (loop.pos.epoch_loss_sum.size() != T) {
    loop.pos.epoch_loss_sum.assign(T, 0.0);
    loop.pos.epoch_examples.assign(T, 0.0);
  }
  MetricsLog log =
      open_metrics_log(rc, summary.run_dir, ranks.leader(), options.resume_dir.empty() ? 0 : loop.pos.log_bytes);
  if (ranks.leader()) checkpointer.record_log_size_of(&log);
  loop.checkpointer = &checkpointer;
  loop.log = &log;
  loop.show = show;
  loop.engine = build_engine(loop, groups, log, show);
  FreezeSchedule freeze(run.model, rc.freeze, *loop.engine, log, show);
  MetricsLogObserver metrics(log, run.task_names(), tr);
  ProgressObserver progress(show, run.task_names(), loop.epochs);
  // Every rank evaluates its share of the test batches; the metrics are combined exactly (mtl::evaluate).
  Evaluator evaluator(run.model, run.tasks, test_data, tr.eval_batch_size, tr.eval_interval, baselines.baselines, log,
                      show, ranks.group.get());
  loop.observers = {&freeze, &metrics, &progress, &evaluator};
  if (ranks.leader()) loop.observers.insert(loop.observers.begin() + 3, &checkpointer);
  std::optional<CollectiveBytes> collective_bytes;
  if (ranks.group) loop.observers.push_back(&collective_bytes.emplace(*ranks.group, log, loop.pos));
  loop.observers.insert(loop.observers.end(), options.observers.begin(), options.observers.end());
  StopSignalScope stop_signals;

  // Resumed from the checkpoint written at the end of the last epoch: its evaluation is in the log already.
  if (loop.pos.step >= loop.total_steps && loop.pos.step > 0 && loop.pos.batch_in_epoch == 0)
    evaluator.final_evaluation_logged();
  run.model->train();
  const bool finished = train_epochs(loop, checkpointer, progress, summary, show);
  if (collective_bytes) collective_bytes->flush(loop.pos);
  if (!finished) return summary;
  evaluator.evaluate_at_end(loop.pos);
  summary.final_eval = evaluator.last();
  summary.steps = loop.pos.step;
  summary.skipped_steps = loop.skipped;
  return summary;
}

}  // namespace mtl
