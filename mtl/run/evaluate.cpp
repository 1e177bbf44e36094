#include "mtl/run/evaluate.h"

#include <cstdio>
#include <numeric>

#include "mtl/data/mixture.h"
#include "mtl/engine/engine.h"
#include "mtl/metrics/metric.h"

namespace mtl {

MetricValues EvalResult::flat() const {
  MetricValues out;
  for (const auto& t : tasks) {
    out.emplace_back(t.task + "/loss", t.loss);
    for (const auto& m : t.metrics) out.emplace_back(t.task + "/" + m.name, m.value);
  }
  if (delta_m && delta_m->valid) {
    out.emplace_back("delta_m", delta_m->percent);
    for (const auto& [task, v] : delta_m->per_task) out.emplace_back(task + "/delta_m", v);
  }
  return out;
}

std::vector<MetricScore> EvalResult::scores() const {
  std::vector<MetricScore> out;
  for (const auto& t : tasks)
    for (const auto& m : t.metrics) out.push_back({t.task, m.name, m.value, m.higher_is_better});
  return out;
}

double EvalResult::value(const std::string& task, const std::string& metric) const {
  for (const auto& t : tasks) {
    if (t.task != task) continue;
    if (metric == "loss") return t.loss;
    for (const auto& m : t.metrics)
      if (m.name == metric) return m.value;
  }
  throw std::out_of_range("no metric " + task + "/" + metric);
}

EvalResult evaluate(MultiTaskModel& model, const std::vector<TaskSpec>& tasks, const Dataset& data,
                    int64_t batch_size) {
  torch::NoGradGuard no_grad;
  bool was_training = model->is_training();
  model->eval();
  std::vector<std::vector<std::unique_ptr<Metric>>> metrics;
  for (const auto& t : tasks) metrics.push_back(t.make_metrics());
  std::vector<double> loss_sum(tasks.size(), 0.0);
  std::vector<int64_t> count(tasks.size(), 0);
  // Each task is evaluated on the examples that have its label (its own dataset's split in a mixture).
  for (const auto& idx : sequential_batches(data, batch_size)) {
    Batch b = data.batch(idx);
    ModelOutput out = model->forward(b.inputs);
    std::vector<at::Tensor> losses = task_losses(tasks, out.outputs, b);
    for (size_t t = 0; t < tasks.size(); ++t) {
      if (!losses[t].defined()) continue;
      loss_sum[t] += losses[t].item<double>() * b.size;
      count[t] += b.size;
      const at::Tensor& target = b.targets.at(tasks[t].label.name);
      for (auto& m : metrics[t]) m->update(out.outputs[t], target);
    }
  }
  EvalResult r;
  for (size_t t = 0; t < tasks.size(); ++t) {
    TaskResult tr;
    tr.task = tasks[t].name;
    tr.examples = count[t];
    tr.loss = count[t] ? loss_sum[t] / count[t] : 0.0;
    for (auto& m : metrics[t]) tr.metrics.push_back({m->name(), count[t] ? m->compute() : 0.0, m->higher_is_better()});
    r.tasks.push_back(tr);
  }
  if (was_training) model->train();
  return r;
}

std::string format_eval_table(const EvalResult& result) {
  std::vector<std::string> cols{"loss"};
  for (const auto& t : result.tasks)
    for (const auto& m : t.metrics)
      if (std::find(cols.begin(), cols.end(), m.name) == cols.end()) cols.push_back(m.name);
  const bool with_delta = result.delta_m && result.delta_m->valid;
  if (with_delta) cols.push_back("delta_m%");
  size_t w0 = 4;
  for (const auto& t : result.tasks) w0 = std::max(w0, t.task.size());
  std::string out;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%-*s", int(w0), "task");
  out += buf;
  for (const auto& c : cols) {
    std::snprintf(buf, sizeof buf, "  %12s", c.c_str());
    out += buf;
  }
  out += "\n";
  for (const auto& t : result.tasks) {
    std::snprintf(buf, sizeof buf, "%-*s", int(w0), t.task.c_str());
    out += buf;
    for (const auto& c : cols) {
      std::string cell = "-";
      if (c == "loss") {
        std::snprintf(buf, sizeof buf, "%.4f", t.loss);
        cell = buf;
      }
      for (const auto& m : t.metrics)
        if (m.name == c) {
          std::snprintf(buf, sizeof buf, "%.4f", m.value);
          cell = buf;
        }
      if (c == "delta_m%")
        for (const auto& [task, v] : result.delta_m->per_task)
          if (task == t.task) cell = format_percent(v);
      std::snprintf(buf, sizeof buf, "  %12s", cell.c_str());
      out += buf;
    }
    out += "\n";
  }
  if (result.delta_m) out += describe_delta_m(*result.delta_m) + "\n";
  return out;
}

}  // namespace mtl
