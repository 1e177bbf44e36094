#include "mtl/run/observers.h"

#include <cstdio>
#include <iostream>

namespace mtl {

void MetricsLogObserver::step_done(const TrainPosition& pos, const StepResult& r) {
  const size_t T = tasks_.size();
  if (log_weights_) {
    MetricValues v;
    for (size_t t = 0; t < T; ++t) {
      v.emplace_back(tasks_[t] + "/weight", r.weights[t]);
      if (r.present[t]) v.emplace_back(tasks_[t] + "/loss", r.losses[t]);
      if (t < r.gates.size())
        for (size_t e = 0; e < r.gates[t].size(); ++e)
          v.emplace_back(tasks_[t] + "/gate" + std::to_string(e), r.gates[t][e]);
    }
    log_.write("weights", pos.step, pos.epoch, v);
  }
  if (pos.step % interval_ == 0 || pos.step == 1) {
    MetricValues v{{"lr", r.lr}, {"total_loss", r.total_loss}};
    if (r.penalty > 0) v.emplace_back("penalty", r.penalty);
    for (size_t t = 0; t < T; ++t) {
      if (r.present[t]) v.emplace_back(tasks_[t] + "/loss", r.losses[t]);
      v.emplace_back(tasks_[t] + "/weight", r.weights[t]);
    }
    log_.write("train", pos.step, pos.epoch, v);
  }
  if (r.diagnostics) log_.write("diagnostics", pos.step, pos.epoch, diagnostics_values(tasks_, r));
}

MetricValues diagnostics_values(const std::vector<std::string>& tasks, const StepResult& r) {
  const GradientDiagnostics& d = *r.diagnostics;
  MetricValues v;
  for (size_t t = 0; t < tasks.size(); ++t) {
    if (!r.present[t]) continue;
    v.emplace_back(tasks[t] + "/grad_norm", d.norms[t]);
    v.emplace_back(tasks[t] + "/weight", r.weights[t]);
  }
  for (size_t i = 0; i < tasks.size(); ++i)
    for (size_t j = i + 1; j < tasks.size(); ++j)
      if (r.present[i] && r.present[j]) v.emplace_back("cosine/" + tasks[i] + "/" + tasks[j], d.cosine[i][j]);
  v.emplace_back("conflict_share", d.conflict_share);
  v.emplace_back("combined_norm", d.combined_norm);
  v.emplace_back("representation", d.representation ? 1.0 : 0.0);
  return v;
}

void MetricsLogObserver::epoch_done(const TrainPosition& pos, const EpochEnd& end) {
  MetricValues v;
  for (size_t t = 0; t < tasks_.size(); ++t) v.emplace_back(tasks_[t] + "/loss", end.mean_losses[t]);
  v.emplace_back("seconds", end.seconds);
  v.emplace_back("examples_per_second", end.examples_per_second);
  v.emplace_back("data_wait_share", end.data_wait_share);
  log_.write("epoch", pos.step, pos.epoch, v);
}

std::string ProgressObserver::loss_info(const TrainPosition& pos) const {
  std::string s = "loss";
  char buf[64];
  for (size_t t = 0; t < tasks_.size(); ++t) {
    const double n = pos.epoch_examples[t];
    std::snprintf(buf, sizeof buf, " %s %.4f", tasks_[t].c_str(), n > 0 ? pos.epoch_loss_sum[t] / n : 0.0);
    s += buf;
  }
  return s;
}

void ProgressObserver::epoch_started(const TrainPosition& pos, int64_t epoch_batches) {
  samples_ = 0;
  progress_.start_epoch(pos.epoch, epochs_, epoch_batches, pos.batch_in_epoch);
}

void ProgressObserver::step_done(const TrainPosition& pos, const StepResult& r) {
  samples_ += r.examples;
  progress_.update(pos.batch_in_epoch, samples_, loss_info(pos));
}

void ProgressObserver::end_epoch(const TrainPosition& pos, const std::string& note) {
  progress_.end_epoch(note.empty() ? loss_info(pos) : note);
}

EvalResult Evaluator::run(const TrainPosition& pos, bool log) {
  EvalResult e = evaluate(model_, tasks_, *test_, batch_size_, group_);
  if (baselines_) attach_delta_m(e, *baselines_);
  if (log) log_.write("eval", pos.step, pos.epoch, e.flat());
  last_ = e;
  return e;
}

void Evaluator::epoch_done(const TrainPosition& pos, const EpochEnd& end) {
  evaluated_at_end_ = false;
  if (!((interval_ > 0 && (pos.epoch + 1) % interval_ == 0) || end.last)) return;
  EvalResult e = run(pos);
  if (print_) std::cerr << format_eval_table(e);
  evaluated_at_end_ = end.last;
}

void Evaluator::evaluate_at_end(const TrainPosition& pos) {
  if (!evaluated_at_end_) run(pos, /*log=*/!logged_at_end_);
}

void FreezeSchedule::epoch_started(const TrainPosition& pos, int64_t) {
  const FreezeSetting& setting = freeze_.at_epoch(pos.epoch);
  if (in_force_ && setting == *in_force_) return;
  const bool first = in_force_ == nullptr;
  in_force_ = &setting;
  int64_t frozen = apply_freezing(*model_, frozen_parameters(*model_, setting));
  engine_.trainable_changed();
  // A resumed run applies the setting in force again but does not log it again (its log has the line from where
  // the setting began), so that its log equals an uninterrupted run's.
  const bool begins_here =
      pos.batch_in_epoch == 0 && (pos.epoch == 0 || !(freeze_.at_epoch(pos.epoch - 1) == setting));
  if (first && !begins_here) return;
  log_.write("freeze", pos.step, pos.epoch, {{"frozen_parameters", double(frozen)}});
  if (print_ && !freeze_.empty()) std::cerr << "epoch " << pos.epoch + 1 << ": " << frozen << " parameters frozen\n";
}

}  // namespace mtl
