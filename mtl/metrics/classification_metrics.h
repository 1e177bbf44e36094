// Classification metrics: accuracy, top-k accuracy and macro F1, for class labels (logits [B, C] against
// class indices [B]) and, where it makes sense, multi-label labels (logits [B, L] against 0/1 [B, L],
// a label predicted positive when its logit > 0). Each accumulates integer counts, so the result does
// not depend on how the examples were split into batches.
//
//   mtl::TopKAccuracy top3(mtl::TopKAccuracyOptions().k(3));  top3.update(logits, y);  double a = top3.compute();
//   YAML: metrics: [accuracy, {type: top_k_accuracy, k: 3}, macro_f1]
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mtl/metrics/metric.h"

namespace mtl {

struct AccuracyOptions {
  AccuracyOptions(LabelKind kind) : kind_(kind) {}  // NOLINT: implicit, so Accuracy(LabelKind::kClass) reads well
  TORCH_ARG(LabelKind, kind);  // kClass or kMultiLabel

 public:
  /// No options in YAML; the label gives the kind.
  static AccuracyOptions from_config(const ConfigNode& options, const LabelInfo& label);
  /// Throws mtl::Error(key, expected) for the first bad value.
  void validate() const;
};

/// kClass: fraction of examples with argmax(output) == target.
/// kMultiLabel: fraction of all B * L elements with (logit > 0) == target.
class Accuracy : public Metric {
 public:
  explicit Accuracy(AccuracyOptions options);
  void reset() override { correct_ = total_ = 0; }
  void update(const at::Tensor& output, const at::Tensor& target) override;
  double compute() const override;  // 0 before any update
  bool higher_is_better() const override { return true; }
  std::string name() const override { return "accuracy"; }
  std::vector<double> state() const override;
  void merge(const std::vector<double>& part) override;

 private:
  LabelKind kind_;
  int64_t correct_ = 0;
  int64_t total_ = 0;
};

struct TopKAccuracyOptions {
  TORCH_ARG(int64_t, k) = 5;  // >= 1 (from YAML also <= the number of classes)

 public:
  /// Option `k` (default 5, 1 <= k <= number of classes).
  static TopKAccuracyOptions from_config(const ConfigNode& options, const LabelInfo& label);
  /// Throws mtl::Error(key, expected) for the first bad value.
  void validate() const;
};

/// kClass only: fraction of examples whose target is among the k highest logits. Ties are broken
/// toward the lower class index, as argmax does, so top-1 accuracy equals accuracy: class c ranks
/// ahead of the target y when x_c > x_y, or x_c == x_y and c < y; the example counts when fewer than k
/// classes rank ahead of y.
class TopKAccuracy : public Metric {
 public:
  explicit TopKAccuracy(TopKAccuracyOptions options = {});
  void reset() override { correct_ = total_ = 0; }
  void update(const at::Tensor& output, const at::Tensor& target) override;
  double compute() const override;  // 0 before any update
  bool higher_is_better() const override { return true; }
  std::string name() const override { return "top" + std::to_string(k_) + "_accuracy"; }
  std::vector<double> state() const override;
  void merge(const std::vector<double>& part) override;

 private:
  int64_t k_;
  int64_t correct_ = 0;
  int64_t total_ = 0;
};

struct MacroF1Options {
  MacroF1Options(LabelKind kind, int64_t num_classes) : kind_(kind), num_classes_(num_classes) {}
  TORCH_ARG(LabelKind, kind);        // kClass or kMultiLabel
  TORCH_ARG(int64_t, num_classes);   // classes (kClass) or labels (kMultiLabel), > 0

 public:
  /// No options in YAML; the label gives the kind and the number of classes.
  static MacroF1Options from_config(const ConfigNode& options, const LabelInfo& label);
  /// Throws mtl::Error(key, expected) for the first bad value.
  void validate() const;
};

/// Macro-averaged F1. From the counts over all updates, per class (kClass) or per label (kMultiLabel):
///   F1_c = 2 tp_c / (2 tp_c + fp_c + fn_c)
/// averaged over the classes that occur in the targets or the predictions (tp_c + fp_c + fn_c > 0);
/// a class that never occurs is left out rather than counted as 0 or 1. A class that occurs but is
/// never predicted correctly (tp_c = 0) has F1 0. Returns 0 when no class occurs at all.
class MacroF1 : public Metric {
 public:
  explicit MacroF1(MacroF1Options options);
  void reset() override;
  void update(const at::Tensor& output, const at::Tensor& target) override;
  double compute() const override;
  bool higher_is_better() const override { return true; }
  std::string name() const override { return "macro_f1"; }
  std::vector<double> state() const override;
  void merge(const std::vector<double>& part) override;

 private:
  LabelKind kind_;
  std::vector<int64_t> tp_, fp_, fn_;  // one count per class / label
};

/// Registry factories: from_config + constructor.
std::unique_ptr<Metric> make_accuracy(const ConfigNode& options, const LabelInfo& label);
std::unique_ptr<Metric> make_top_k_accuracy(const ConfigNode& options, const LabelInfo& label);
std::unique_ptr<Metric> make_macro_f1(const ConfigNode& options, const LabelInfo& label);

}  // namespace mtl
