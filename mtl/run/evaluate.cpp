#include "mtl/run/evaluate.h"

#include <cstdio>
#include <numeric>

#include "mtl/data/mixture.h"
#include "mtl/dist/process_group.h"
#include "mtl/engine/shard_plan.h"
#include "mtl/engine/engine.h"
#include "mtl/metrics/metric.h"

namespace mtl {

MetricValues EvalResult::flat() const {
  MetricValues out;
  for (const auto& t : tasks) {
    out.emplace_back(t.task + "/loss", t.loss);
    for (const auto& m : t.metrics) out.emplace_back(t.task + "/" + m.name, m.value);
  }
  for (const auto& t : tasks)
    for (size_t e = 0; e < t.gates.size(); ++e) out.emplace_back(t.task + "/gate" + std::to_string(e), t.gates[e]);
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

namespace {

// What the batches of one evaluation add up to, per task: the loss sum, the examples, the metric statistics.
struct EvalTally {
  std::vector<std::vector<std::unique_ptr<Metric>>> metrics;
  std::vector<double> loss_sum;
  std::vector<int64_t> count;
  std::vector<std::vector<double>> gate_sum;  // per task: summed gate weights per expert (expert architectures)
  std::vector<int64_t> gate_rows;

  explicit EvalTally(const std::vector<TaskSpec>& tasks)
      : loss_sum(tasks.size(), 0.0), count(tasks.size(), 0), gate_sum(tasks.size()), gate_rows(tasks.size(), 0) {
    for (const auto& t : tasks) metrics.push_back(t.make_metrics());
  }

  // Each task is evaluated on the examples that have its label (its own dataset's split in a mixture).
  void add(const std::vector<TaskSpec>& tasks, const ModelOutput& out, const Batch& b) {
    std::vector<at::Tensor> losses = task_losses(tasks, out.outputs, b);
    for (size_t t = 0; t < tasks.size(); ++t) {
      if (!losses[t].defined()) continue;
      loss_sum[t] += losses[t].item<double>() * b.size;
      count[t] += b.size;
      const at::Tensor& target = b.targets.at(tasks[t].label.name);
      for (auto& m : metrics[t]) m->update(out.outputs[t], target);
    }
    for (size_t t = 0; t < out.gates.size() && t < tasks.size(); ++t) {
      at::Tensor sums = out.gates[t].sum(0).to(at::kDouble).contiguous();
      add_gates(t, std::vector<double>(sums.data_ptr<double>(), sums.data_ptr<double>() + sums.numel()),
                out.gates[t].size(0));
    }
  }

  void add_gates(size_t t, const std::vector<double>& sums, int64_t rows) {
    if (gate_sum[t].empty()) gate_sum[t].assign(sums.size(), 0.0);
    for (size_t e = 0; e < sums.size() && e < gate_sum[t].size(); ++e) gate_sum[t][e] += sums[e];
    gate_rows[t] += rows;
  }

  // One float64 vector: per task [loss sum, examples, each metric's state].
  at::Tensor pack() const {
    std::vector<double> v;
    for (size_t t = 0; t < metrics.size(); ++t) {
      v.push_back(loss_sum[t]);
      v.push_back(static_cast<double>(count[t]));
      for (const auto& m : metrics[t]) {
        std::vector<double> s = m->state();
        v.insert(v.end(), s.begin(), s.end());
      }
    }
    // Gates last, each task's with its length first (a rank without batches has none).
    for (size_t t = 0; t < metrics.size(); ++t) {
      v.push_back(static_cast<double>(gate_sum[t].size()));
      v.push_back(static_cast<double>(gate_rows[t]));
      v.insert(v.end(), gate_sum[t].begin(), gate_sum[t].end());
    }
    return at::tensor(v, at::kDouble);
  }

  // Adds a part packed by a tally of the same tasks (its metric states have the lengths of ours).
  void merge(const at::Tensor& part) {
    const double* p = part.data_ptr<double>();
    size_t k = 0;
    for (size_t t = 0; t < metrics.size(); ++t) {
      loss_sum[t] += p[k++];
      count[t] += static_cast<int64_t>(p[k++]);
      for (auto& m : metrics[t]) {
        const size_t n = m->state().size();
        m->merge(std::vector<double>(p + k, p + k + n));
        k += n;
      }
    }
    for (size_t t = 0; t < metrics.size(); ++t) {
      const auto n = static_cast<size_t>(p[k++]);
      const auto rows = static_cast<int64_t>(p[k++]);
      if (n > 0) add_gates(t, std::vector<double>(p + k, p + k + n), rows);
      k += n;
    }
  }

  // The ranks' tallies combined in rank order, the same on every rank.
  void reduce(ProcessGroup& group, const std::vector<TaskSpec>& tasks) {
    std::vector<at::Tensor> parts = group.allgather(pack());
    *this = EvalTally(tasks);
    for (const at::Tensor& part : parts) merge(part);
  }

  EvalResult result(const std::vector<TaskSpec>& tasks) const {
    EvalResult r;
    for (size_t t = 0; t < tasks.size(); ++t) {
      TaskResult tr;
      tr.task = tasks[t].name;
      tr.examples = count[t];
      tr.loss = count[t] ? loss_sum[t] / count[t] : 0.0;
      for (auto& m : metrics[t])
        tr.metrics.push_back({m->name(), count[t] ? m->compute() : 0.0, m->higher_is_better()});
      for (double s : gate_sum[t]) tr.gates.push_back(gate_rows[t] ? s / double(gate_rows[t]) : 0.0);
      r.tasks.push_back(tr);
    }
    return r;
  }
};

}  // namespace

EvalResult evaluate(MultiTaskModel& model, const std::vector<TaskSpec>& tasks, const Dataset& data,
                    int64_t batch_size, ProcessGroup* group) {
  torch::NoGradGuard no_grad;
  bool was_training = model->is_training();
  model->eval();
  std::vector<std::vector<int64_t>> batches = sequential_batches(data, batch_size);
  if (group) {  // this rank's contiguous share of the batches
    const std::vector<int64_t> off = shard_offsets(static_cast<int64_t>(batches.size()), group->world_size());
    batches = std::vector<std::vector<int64_t>>(batches.begin() + off[group->rank()],
                                                batches.begin() + off[group->rank() + 1]);
  }
  EvalTally tally(tasks);
  for (const auto& idx : batches) {
    Batch b = data.batch(idx);
    tally.add(tasks, model->forward(b.inputs), b);
  }
  if (group) tally.reduce(*group, tasks);
  if (was_training) model->train();
  return tally.result(tasks);
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
