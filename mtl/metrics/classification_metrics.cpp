#include "mtl/metrics/classification_metrics.h"

#include <algorithm>

#include "mtl/config/config_node.h"
#include "mtl/config/option_check.h"

namespace mtl {

namespace {

// Metrics never take part in autograd and count on the CPU.
at::Tensor plain(const at::Tensor& t) { return t.detach().to(torch::kCPU); }

// Class index [B] (int64) from logits [B, C].
at::Tensor predicted_class(const at::Tensor& output) { return plain(output).argmax(1); }

// Multi-label predictions and targets as bool [B, L].
at::Tensor predicted_labels(const at::Tensor& output) { return plain(output) > 0; }
at::Tensor target_labels(const at::Tensor& target) { return plain(target) > 0.5; }

void check_class_shapes(const char* metric, const at::Tensor& output, const at::Tensor& target) {
  TORCH_CHECK(output.dim() == 2 && target.dim() == 1 && target.size(0) == output.size(0), metric,
              ": expected outputs [B, C] and class targets [B], got ", output.sizes(), " and ", target.sizes());
}

void check_multilabel_shapes(const char* metric, const at::Tensor& output, const at::Tensor& target) {
  TORCH_CHECK(output.dim() == 2 && output.sizes() == target.sizes(), metric,
              ": expected outputs and 0/1 targets of the same shape [B, L], got ", output.sizes(), " and ",
              target.sizes());
}

double ratio(int64_t num, int64_t den) { return den == 0 ? 0.0 : static_cast<double>(num) / den; }

void check_class_or_multilabel(LabelKind kind) {
  check(kind == LabelKind::kClass || kind == LabelKind::kMultiLabel, "kind",
        "expected LabelKind::kClass or LabelKind::kMultiLabel");
}

}  // namespace

// ---------------------------------------------------------------- accuracy

AccuracyOptions AccuracyOptions::from_config(const ConfigNode&, const LabelInfo& label) { return {label.kind}; }

void AccuracyOptions::validate() const { check_class_or_multilabel(kind_); }

Accuracy::Accuracy(AccuracyOptions options) : kind_(options.kind()) {
  validate_options("AccuracyOptions", [&] { options.validate(); });
}

void Accuracy::update(const at::Tensor& output, const at::Tensor& target) {
  if (kind_ == LabelKind::kClass) {
    check_class_shapes("accuracy", output, target);
    correct_ += predicted_class(output).eq(plain(target).to(torch::kLong)).sum().item<int64_t>();
    total_ += target.size(0);
  } else {
    check_multilabel_shapes("accuracy", output, target);
    correct_ += predicted_labels(output).eq(target_labels(target)).sum().item<int64_t>();
    total_ += target.numel();
  }
}

double Accuracy::compute() const { return ratio(correct_, total_); }

// ---------------------------------------------------------------- top-k accuracy

TopKAccuracyOptions TopKAccuracyOptions::from_config(const ConfigNode& n, const LabelInfo& label) {
  TopKAccuracyOptions o;
  o.k(n.get<int64_t>("k", o.k()));
  n.check(o.k() >= 1 && o.k() <= label.size, "k",
          "expected 1 <= k <= " + std::to_string(label.size) + " (the number of classes of label '" + label.name +
              "'), got " + std::to_string(o.k()));
  return o;
}

void TopKAccuracyOptions::validate() const {
  check(k_ >= 1, "k", "expected k >= 1, got " + std::to_string(k_));
}

TopKAccuracy::TopKAccuracy(TopKAccuracyOptions options) : k_(options.k()) {
  validate_options("TopKAccuracyOptions", [&] { options.validate(); });
}

void TopKAccuracy::update(const at::Tensor& output, const at::Tensor& target) {
  check_class_shapes("top_k_accuracy", output, target);
  at::Tensor x = plain(output);
  at::Tensor y = plain(target).to(torch::kLong);
  const int64_t c = x.size(1);
  at::Tensor x_y = x.gather(1, y.unsqueeze(1));                        // [B, 1] the target's logit
  at::Tensor lower_index = torch::arange(c).unsqueeze(0) < y.unsqueeze(1);  // [B, C] c < y
  at::Tensor ahead = (x > x_y).logical_or(x.eq(x_y).logical_and(lower_index));
  at::Tensor rank = ahead.sum(1);  // classes ranked ahead of the target
  correct_ += (rank < k_).sum().item<int64_t>();
  total_ += y.size(0);
}

double TopKAccuracy::compute() const { return ratio(correct_, total_); }

// ---------------------------------------------------------------- macro F1

MacroF1Options MacroF1Options::from_config(const ConfigNode&, const LabelInfo& label) {
  return {label.kind, label.size};
}

void MacroF1Options::validate() const {
  check_class_or_multilabel(kind_);
  check(num_classes_ > 0, "num_classes", "expected a positive number, got " + std::to_string(num_classes_));
}

MacroF1::MacroF1(MacroF1Options options) : kind_(options.kind()) {
  validate_options("MacroF1Options", [&] { options.validate(); });
  tp_.assign(options.num_classes(), 0);
  fp_.assign(options.num_classes(), 0);
  fn_.assign(options.num_classes(), 0);
}

void MacroF1::reset() {
  std::fill(tp_.begin(), tp_.end(), 0);
  std::fill(fp_.begin(), fp_.end(), 0);
  std::fill(fn_.begin(), fn_.end(), 0);
}

void MacroF1::update(const at::Tensor& output, const at::Tensor& target) {
  const int64_t n = static_cast<int64_t>(tp_.size());
  at::Tensor pred, truth;  // bool [B, n]: class/label c predicted, class/label c true
  if (kind_ == LabelKind::kClass) {
    check_class_shapes("macro_f1", output, target);
    pred = torch::one_hot(predicted_class(output), n).to(torch::kBool);
    truth = torch::one_hot(plain(target).to(torch::kLong), n).to(torch::kBool);
  } else {
    check_multilabel_shapes("macro_f1", output, target);
    pred = predicted_labels(output);
    truth = target_labels(target);
  }
  TORCH_CHECK(pred.size(1) == n, "macro_f1: expected ", n, " classes/labels, got ", pred.size(1));
  at::Tensor tp = pred.logical_and(truth).sum(0).contiguous();
  at::Tensor fp = pred.logical_and(truth.logical_not()).sum(0).contiguous();
  at::Tensor fn = pred.logical_not().logical_and(truth).sum(0).contiguous();
  const int64_t* tp_p = tp.data_ptr<int64_t>();
  const int64_t* fp_p = fp.data_ptr<int64_t>();
  const int64_t* fn_p = fn.data_ptr<int64_t>();
  for (int64_t c = 0; c < n; ++c) {
    tp_[c] += tp_p[c];
    fp_[c] += fp_p[c];
    fn_[c] += fn_p[c];
  }
}

double MacroF1::compute() const {
  double sum = 0.0;
  int64_t occurring = 0;
  for (size_t c = 0; c < tp_.size(); ++c) {
    const int64_t den = 2 * tp_[c] + fp_[c] + fn_[c];
    if (den == 0) continue;  // class absent from targets and predictions
    sum += 2.0 * tp_[c] / den;
    ++occurring;
  }
  return occurring == 0 ? 0.0 : sum / occurring;
}

// ---------------------------------------------------------------- factories

std::unique_ptr<Metric> make_accuracy(const ConfigNode& n, const LabelInfo& label) {
  return std::make_unique<Accuracy>(AccuracyOptions::from_config(n, label));
}

std::unique_ptr<Metric> make_top_k_accuracy(const ConfigNode& n, const LabelInfo& label) {
  return std::make_unique<TopKAccuracy>(TopKAccuracyOptions::from_config(n, label));
}

std::unique_ptr<Metric> make_macro_f1(const ConfigNode& n, const LabelInfo& label) {
  return std::make_unique<MacroF1>(MacroF1Options::from_config(n, label));
}

// Distributed evaluation (Metric::state/merge): the integer counts, exact in double.
std::vector<double> Accuracy::state() const { return {double(correct_), double(total_)}; }
void Accuracy::merge(const std::vector<double>& part) { merge_counts(*this, part, {&correct_, &total_}); }

std::vector<double> TopKAccuracy::state() const { return {double(correct_), double(total_)}; }
void TopKAccuracy::merge(const std::vector<double>& part) { merge_counts(*this, part, {&correct_, &total_}); }

std::vector<double> MacroF1::state() const {
  std::vector<double> out;
  for (const auto* counts : {&tp_, &fp_, &fn_})
    for (int64_t c : *counts) out.push_back(static_cast<double>(c));
  return out;
}
void MacroF1::merge(const std::vector<double>& part) {
  const size_t n = tp_.size();
  check_metric_part(*this, part, 3 * n);
  size_t k = 0;
  for (auto* counts : {&tp_, &fp_, &fn_})
    for (size_t c = 0; c < n; ++c) (*counts)[c] += static_cast<int64_t>(part[k++]);
}

}  // namespace mtl
