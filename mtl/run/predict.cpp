#include "mtl/run/predict.h"

#include <nlohmann/json.hpp>

#include <sstream>

#include "heads/head.h"
#include "mtl/data/mixture.h"

namespace mtl {

namespace {

// One batch's predictions: per task the predicted values [B, k] (undefined for inactive tasks) and, for
// classification, the predicted class's probability [B].
struct BatchPredictions {
  std::vector<int64_t> index;
  std::vector<bool> active;
  std::vector<at::Tensor> preds, probs;
  at::Tensor token_mask;  // real tokens of text inputs (not padding)
};

BatchPredictions predict_batch(MultiTaskModel& model, const std::vector<TaskSpec>& tasks, const Dataset& data,
                               const std::vector<int64_t>& idx, const std::vector<DatasetPart>& parts) {
  Batch b = data.batch(idx);
  ModelOutput o = model->forward(b.inputs);
  std::string dataset;  // the batch's dataset in a mixture
  for (const auto& p : parts)
    if (idx.front() >= p.offset) dataset = p.name;
  BatchPredictions out;
  out.index = idx;
  out.active.assign(tasks.size(), false);
  out.preds.resize(tasks.size());
  out.probs.resize(tasks.size());
  for (size_t t = 0; t < tasks.size(); ++t) {
    out.active[t] = o.outputs[t].defined() && (dataset.empty() || tasks[t].dataset == dataset);
    if (!out.active[t]) continue;
    out.preds[t] = model->head(t)->predict(o.outputs[t]).to(at::kDouble).reshape({b.size, -1});
    if (tasks[t].label.kind == LabelKind::kClass)
      out.probs[t] = std::get<0>(o.outputs[t].softmax(1).max(1)).to(at::kDouble);
  }
  for (const auto& [name, in] : b.inputs)
    if (in.scalar_type() == at::kLong && in.dim() == 2) out.token_mask = in.ne(kPadTokenId);
  return out;
}

nlohmann::ordered_json json_value(const TaskSpec& spec, const at::Tensor& row, const at::Tensor& prob,
                                  const at::Tensor& mask) {
  if (spec.label.kind == LabelKind::kTokenClass) {
    // Token-level predictions cover the real tokens: not the <cls> token at position 0, not padding.
    std::vector<std::string> tags;
    for (int64_t k = 1; k < row.numel(); ++k) {
      if (mask.defined() && !mask[k].item<bool>()) break;
      int64_t c = static_cast<int64_t>(row[k].item<double>());
      tags.push_back(c < static_cast<int64_t>(spec.label.classes.size()) ? spec.label.classes[c] : std::to_string(c));
    }
    return tags;
  }
  if (spec.label.kind == LabelKind::kClass) {
    int64_t c = static_cast<int64_t>(row[0].item<double>());
    nlohmann::ordered_json p;
    p["class"] = c;
    if (c < static_cast<int64_t>(spec.label.classes.size())) p["name"] = spec.label.classes[c];
    p["prob"] = prob.item<double>();
    return p;
  }
  std::vector<double> v(row.data_ptr<double>(), row.data_ptr<double>() + row.numel());
  if (v.size() == 1) return v[0];
  return v;
}

void write_json_rows(std::ostream& out, const std::vector<TaskSpec>& tasks, const BatchPredictions& p) {
  for (size_t r = 0; r < p.index.size(); ++r) {
    nlohmann::ordered_json j;
    j["index"] = p.index[r];
    for (size_t t = 0; t < tasks.size(); ++t)
      if (p.active[t])
        j[tasks[t].name] = json_value(tasks[t], p.preds[t][r], p.probs[t].defined() ? p.probs[t][r] : at::Tensor(),
                                      p.token_mask.defined() ? p.token_mask[r] : at::Tensor());
    out << j.dump() << "\n";
  }
}

void write_csv_rows(std::ostream& out, const std::vector<TaskSpec>& tasks, const BatchPredictions& p) {
  for (size_t r = 0; r < p.index.size(); ++r) {
    out << p.index[r];
    for (size_t t = 0; t < tasks.size(); ++t) {
      const bool cls = tasks[t].label.kind == LabelKind::kClass;
      if (!p.active[t]) {
        out << (cls ? ",," : ",");
        continue;
      }
      auto row = p.preds[t][r];
      int64_t n = row.numel();
      const bool tokens = tasks[t].label.kind == LabelKind::kTokenClass;
      if (tokens && p.token_mask.defined()) n = p.token_mask[r].sum().item<int64_t>();
      const int64_t first = tokens ? 1 : 0;
      out << ",";
      for (int64_t k = first; k < n; ++k) out << (k > first ? ";" : "") << row[k].item<double>();
      if (cls) out << "," << p.probs[t][r].item<double>();
    }
    out << "\n";
  }
}

}  // namespace

std::string format_predictions(MultiTaskModel& model, const std::vector<TaskSpec>& tasks, const Dataset& data,
                               int64_t eval_batch_size, bool jsonl) {
  torch::NoGradGuard no_grad;
  model->eval();
  std::ostringstream out;
  if (!jsonl) {
    out << "index";
    for (const auto& t : tasks) {
      out << "," << t.name;
      if (t.label.kind == LabelKind::kClass) out << "," << t.name << "_prob";
    }
    out << "\n";
  }
  const std::vector<DatasetPart> parts = data.dataset_parts();
  for (const auto& idx : sequential_batches(data, eval_batch_size)) {
    BatchPredictions p = predict_batch(model, tasks, data, idx, parts);
    if (jsonl)
      write_json_rows(out, tasks, p);
    else
      write_csv_rows(out, tasks, p);
  }
  return out.str();
}

}  // namespace mtl
