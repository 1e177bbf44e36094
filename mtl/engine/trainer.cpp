#include "mtl/engine/trainer.h"

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <iostream>

#include "mtl/core/allocator.h"
#include "mtl/data/loader.h"
#include "mtl/data/mixture.h"
#include "mtl/data/sampler.h"
#include "mtl/engine/async_engine.h"
#include "mtl/engine/baselines.h"
#include "mtl/engine/engine.h"
#include "mtl/engine/parallel_engine.h"
#include "mtl/engine/progress.h"
#include "mtl/io/atomic_file.h"
#include "mtl/io/checkpoint.h"
#include "mtl/io/metrics_log.h"
#include "mtl/model/freezing.h"
#include "mtl/optim/param_groups.h"

namespace fs = std::filesystem;

namespace mtl {

namespace {

std::atomic<bool> g_interrupted{false};
extern "C" void on_sigint(int) { g_interrupted = true; }

// Installs a SIGINT handler for the duration of training: the first Ctrl-C finishes the current step,
// writes a checkpoint and stops; the previous handler (usually: terminate) comes back afterwards.
class SigintScope {
 public:
  SigintScope() {
    g_interrupted = false;
    prev_ = std::signal(SIGINT, on_sigint);
  }
  ~SigintScope() { std::signal(SIGINT, prev_); }

 private:
  void (*prev_)(int);
};

std::string loss_info(const std::vector<TaskSpec>& tasks, const std::vector<double>& sum,
                      const std::vector<double>& n) {
  std::string s = "loss";
  char buf[64];
  for (size_t t = 0; t < tasks.size(); ++t) {
    std::snprintf(buf, sizeof buf, " %s %.4f", tasks[t].name.c_str(), n[t] > 0 ? sum[t] / n[t] : 0.0);
    s += buf;
  }
  return s;
}

}  // namespace

std::string fresh_run_dir(const std::string& base) {
  auto usable = [](const fs::path& p) { return !fs::exists(p) || (fs::is_directory(p) && fs::is_empty(p)); };
  if (usable(base)) return base;
  for (int i = 2;; ++i) {
    std::string candidate = base + "-" + std::to_string(i);
    if (usable(candidate)) return candidate;
  }
}

void configure_torch_threads(const TrainerOptions& trainer) {
  configure_allocator();
  // The main thread (evaluation, serial work) may use every core the workers use.
  at::set_num_threads(static_cast<int>(trainer.threads * trainer.intra_op_threads));
  at::globalContext().setDeterministicAlgorithms(trainer.deterministic, /*warn_only=*/true);
}

TrainSummary train(Experiment& ex, const TrainRunOptions& options) {
  TrainSummary summary;
  const TrainerOptions& tr = ex.trainer;
  const size_t T = ex.tasks.size();
  configure_torch_threads(tr);

  // Data first: a missing or corrupt file stops the run before anything is written.
  std::shared_ptr<Dataset> train_data = ex.data->open(Split::kTrain);
  std::shared_ptr<Dataset> test_data = ex.data->open(Split::kTest);
  if (train_data->size() == 0) throw Error(ex.config.file(), "the training split is empty");
  // Single-task baselines for delta-m: a malformed file stops here too; a stale one is only a note.
  BaselinesLookup baselines = find_baselines(ex);
  if (!baselines.note.empty()) std::cerr << "mtl: note: " << baselines.note << "; delta-m not reported\n";
  auto evaluate_test = [&]() {
    EvalResult e = evaluate(ex.model, ex.tasks, *test_data, tr.eval_batch_size);
    if (baselines.baselines) attach_delta_m(e, *baselines.baselines);
    return e;
  };

  // Run directory: never overwrite an earlier run unless resuming it.
  bool resuming = !options.resume_dir.empty();
  std::string run_dir = resuming ? options.resume_dir : fresh_run_dir(tr.run_dir);
  std::string ckpt_path = (fs::path(run_dir) / "checkpoint.pt").string();
  if (resuming && !fs::exists(ckpt_path))
    throw Error(run_dir, "cannot resume: no checkpoint.pt in this run directory");
  ensure_writable_dir(run_dir);
  summary.run_dir = run_dir;
  write_file_atomic((fs::path(run_dir) / (resuming ? "config.resumed.yaml" : "config.yaml")).string(),
                    ex.config.resolved_yaml());
  // The tokenizer and class vocabularies, for eval/predict/resume (a resumed run was built from them).
  if (!resuming) save_data_artifacts(ex, run_dir);

  // Parameter groups own the optimizer; frozen parameters stay in their group with no gradient (so no
  // optimizer state) until a freeze.schedule stage unfreezes them.
  ParamGroups groups = make_param_groups(ex);
  torch::optim::Optimizer* optimizer = &groups.optimizer();
  ParallelEngineOptions popts{static_cast<int>(tr.threads), static_cast<int>(tr.intra_op_threads),
                              static_cast<uint64_t>(tr.seed), tr.balance == "dynamic"};
  std::unique_ptr<GradientEngine> engine;
  if (tr.mode == "async" && !ex.model->buffers().empty())
    throw Error(ex.config.file(), "engine.mode async does not support models with buffers such as BatchNorm "
                                  "running statistics (use norm: none, or engine.mode sync)");
  // Freezing in force for an epoch: applied at the start and whenever freeze.schedule changes it; the
  // engine and the weighting method then see the new set of trainable parameters.
  const FreezeSetting* freeze_in_force = nullptr;
  auto apply_freeze = [&](int64_t epoch) -> std::pair<bool, int64_t> {
    const FreezeSetting& setting = ex.freeze.at_epoch(epoch);
    if (freeze_in_force && setting == *freeze_in_force) return {false, 0};
    freeze_in_force = &setting;
    int64_t frozen = apply_freezing(*ex.model, frozen_parameters(*ex.model, setting));
    std::vector<SharedParameter> shared;
    for (const auto& kv : ex.model->backbone()->named_parameters())
      if (kv.value().requires_grad()) shared.push_back({"backbone." + kv.key(), kv.value().numel()});
    ex.weighting->set_shared_parameters(shared);
    engine.reset();
    if (tr.mode != "async") engine = make_parallel_engine(ex.model, ex.tasks, *ex.weighting, popts, ex.make_model);
    return {true, frozen};
  };

  // Tasks from several datasets: the task sampler picks each step's dataset; an epoch is, unless
  // task_sampler.steps_per_epoch says otherwise, as many steps as all datasets have batches.
  const auto* mixture = dynamic_cast<const MixtureDataset*>(train_data.get());
  std::vector<int64_t> part_sizes;
  std::vector<std::vector<int64_t>> part_lengths;
  int64_t spe = 0;
  if (mixture) {
    for (size_t d = 0; d < mixture->parts(); ++d) {
      part_sizes.push_back(mixture->part(d).size());
      if (part_sizes.back() == 0)
        throw Error(ex.config.file(), "the training split of dataset '" + mixture->name(d) + "' is empty");
      part_lengths.push_back(tr.length_bucketing ? mixture->part(d).lengths() : std::vector<int64_t>{});
      spe += batches_per_epoch(part_sizes.back(), tr.batch_size, false);
    }
    if (ex.task_sampler.steps_per_epoch > 0) spe = ex.task_sampler.steps_per_epoch;
  } else {
    spe = batches_per_epoch(train_data->size(), tr.batch_size, tr.drop_last);
  }
  if (spe == 0) throw Error(ex.config.file(), "trainer.batch_size is larger than the training split with drop_last");
  const std::vector<int64_t> lengths = !mixture && tr.length_bucketing ? train_data->lengths() : std::vector<int64_t>{};
  auto epoch_batches = [&](int64_t epoch) {
    std::vector<std::vector<int64_t>> out;
    if (mixture) {
      for (auto& mb : mixture_epoch(ex.task_sampler, part_sizes, spe, tr.batch_size, static_cast<uint64_t>(tr.seed),
                                    epoch, part_lengths)) {
        for (auto& i : mb.indices) i += mixture->offset(static_cast<size_t>(mb.dataset));
        out.push_back(std::move(mb.indices));
      }
      return out;
    }
    out = make_batches(epoch_permutation(train_data->size(), tr.seed, epoch), tr.batch_size, tr.drop_last);
    return bucket_by_length(out, lengths, static_cast<uint64_t>(tr.seed), epoch);
  };
  int64_t total_steps = tr.epochs * spe;
  if (tr.max_steps > 0) total_steps = tr.epochs > 0 ? std::min(total_steps, tr.max_steps) : tr.max_steps;
  const int64_t epochs = (total_steps + spe - 1) / spe;

  TrainPosition pos;
  CheckpointRefs refs{ex.model.get(), optimizer, ex.weighting.get()};
  if (resuming) {
    pos = load_checkpoint(ckpt_path, refs);
    std::cerr << "resuming " << run_dir << " at step " << pos.step << " (epoch " << pos.epoch + 1 << ")\n";
  }
  if (pos.epoch_loss_sum.size() != T) {
    pos.epoch_loss_sum.assign(T, 0.0);
    pos.epoch_examples.assign(T, 0.0);
  }
  MetricsLog log((fs::path(run_dir) / "metrics.jsonl").string());
  Progress progress(options.progress, Progress::stderr_is_tty());
  SigintScope sigint;

  ex.model->train();
  bool evaluated_at_end = false;
  while (pos.step < total_steps) {
    auto epoch_start = std::chrono::steady_clock::now();
    if (auto [changed, frozen] = apply_freeze(pos.epoch); changed) {
      log.write("freeze", pos.step, pos.epoch, {{"frozen_parameters", double(frozen)}});
      if (options.progress && !ex.freeze.empty())
        std::cerr << "epoch " << pos.epoch + 1 << ": " << frozen << " parameters frozen\n";
    }
    auto batches = epoch_batches(pos.epoch);
    const int64_t epoch_batches = static_cast<int64_t>(batches.size());
    progress.start_epoch(pos.epoch, epochs, epoch_batches, pos.batch_in_epoch);
    // The loader serves the rest of this epoch (and at most the steps left) in order.
    int64_t last = std::min<int64_t>(epoch_batches, pos.batch_in_epoch + (total_steps - pos.step));
    std::vector<std::vector<int64_t>> todo(batches.begin() + pos.batch_in_epoch, batches.begin() + last);
    Loader loader(train_data, std::move(todo), LoaderOptions{tr.loader_workers, tr.prefetch});
    int64_t samples = 0;
    double penalty = 0.0;  // explicit L1/L2 penalties of the last step
    evaluated_at_end = false;
    bool stopped = false;
    // Bookkeeping after each update (sync: in order; async: serialised by the async runner).
    auto after_step = [&](const Batch& batch, const StepResult& r, double lr) -> bool {
      ++pos.step;
      ++pos.batch_in_epoch;
      samples += batch.size;
      for (size_t t = 0; t < T; ++t) {
        if (!r.present[t]) continue;
        pos.epoch_loss_sum[t] += r.losses[t] * batch.size;
        pos.epoch_examples[t] += batch.size;
      }
      if (!std::isfinite(r.total_loss))
        throw Error(ex.config.file(), "training diverged: the loss is " + std::to_string(r.total_loss) +
                                          " at step " + std::to_string(pos.step) +
                                          " (lower optimizer.lr or check the data)");
      if (tr.log_weights) {
        MetricValues v;
        for (size_t t = 0; t < T; ++t) {
          v.emplace_back(ex.tasks[t].name + "/weight", r.weights[t]);
          if (r.present[t]) v.emplace_back(ex.tasks[t].name + "/loss", r.losses[t]);
        }
        log.write("weights", pos.step, pos.epoch, v);
      }
      if (pos.step % tr.log_interval == 0 || pos.step == 1) {
        MetricValues v{{"lr", lr}, {"total_loss", r.total_loss}};
        if (penalty > 0) v.emplace_back("penalty", penalty);
        for (size_t t = 0; t < T; ++t) {
          if (r.present[t]) v.emplace_back(ex.tasks[t].name + "/loss", r.losses[t]);
          v.emplace_back(ex.tasks[t].name + "/weight", r.weights[t]);
        }
        log.write("train", pos.step, pos.epoch, v);
      }
      progress.update(pos.batch_in_epoch, samples, loss_info(ex.tasks, pos.epoch_loss_sum, pos.epoch_examples));
      bool interrupted = g_interrupted.load();
      if ((tr.checkpoint_interval > 0 && pos.step % tr.checkpoint_interval == 0) || interrupted)
        save_checkpoint(ckpt_path, refs, pos);
      if (interrupted) stopped = true;
      return !interrupted;
    };
    if (tr.mode == "async") {
      run_async(ex.model, ex.tasks, *ex.weighting, ex.optimizer,
                AsyncOptions{static_cast<int>(tr.threads), static_cast<int>(tr.intra_op_threads),
                             static_cast<uint64_t>(tr.seed), tr.lookahead},
                loader, pos.step, pos.epoch,
                [&](int64_t step) { return scheduled_lr(ex.scheduler, ex.optimizer.lr, step, spe, total_steps); },
                after_step, ex.make_model);
    } else {
      Batch batch;
      while (!stopped && pos.step < total_steps && loader.next(batch)) {
        StepContext ctx{pos.step, pos.epoch, {}};
        double lr = groups.set_step(pos.step, spe, total_steps);
        StepResult r = engine->compute_gradients(batch, ctx);
        penalty = groups.before_step();
        optimizer->step();
        groups.after_step();
        if (ex.weighting->needs_losses_after_step())
          after_step_for_step(*ex.weighting, engine->batch_losses(batch, ctx), r.present, ctx);
        after_step(batch, r, lr);
      }
    }
    if (stopped) {
      progress.end_epoch("interrupted");
      std::cerr << "interrupted: checkpoint written to " << ckpt_path << "; continue with --resume " << run_dir << "\n";
      summary.interrupted = true;
      summary.steps = pos.step;
      return summary;
    }
    bool epoch_done = pos.batch_in_epoch >= epoch_batches;
    summary.epoch_seconds.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count());
    summary.data_wait_seconds += loader.wait_seconds();
    progress.end_epoch(loss_info(ex.tasks, pos.epoch_loss_sum, pos.epoch_examples));
    if (epoch_done) {
      std::vector<double> mean(T, 0.0);
      MetricValues v;
      for (size_t t = 0; t < T; ++t) {
        mean[t] = pos.epoch_examples[t] > 0 ? pos.epoch_loss_sum[t] / pos.epoch_examples[t] : 0.0;
        v.emplace_back(ex.tasks[t].name + "/loss", mean[t]);
      }
      v.emplace_back("seconds", summary.epoch_seconds.back());
      v.emplace_back("data_wait_share", loader.wait_seconds() / std::max(1e-9, summary.epoch_seconds.back()));
      log.write("epoch", pos.step, pos.epoch, v);
      ex.weighting->on_epoch_end(mean);
      bool last = pos.step >= total_steps;
      if ((tr.eval_interval > 0 && (pos.epoch + 1) % tr.eval_interval == 0) || last) {
        EvalResult e = evaluate_test();
        log.write("eval", pos.step, pos.epoch, e.flat());
        if (options.progress) std::cerr << format_eval_table(e);
        summary.final_eval = e;
        evaluated_at_end = last;
      }
      ++pos.epoch;
      pos.batch_in_epoch = 0;
      std::fill(pos.epoch_loss_sum.begin(), pos.epoch_loss_sum.end(), 0.0);
      std::fill(pos.epoch_examples.begin(), pos.epoch_examples.end(), 0.0);
    }
    save_checkpoint(ckpt_path, refs, pos);
  }
  if (!evaluated_at_end) {
    summary.final_eval = evaluate_test();
    log.write("eval", pos.step, pos.epoch, summary.final_eval.flat());
  }
  summary.steps = pos.step;
  return summary;
}

}  // namespace mtl
