// Token-tagging metrics for LabelKind::kTokenClass (logits [B, L, C] against tags [B, L], kIgnoreIndex
// where a token has no tag): span precision, recall and F1 as conlleval computes them, and token accuracy.
//
// Spans are decoded from the tag names (LabelInfo::classes: O, B-PER, I-PER, E-PER, S-PER, ...) of each
// sequence, after dropping the positions whose target is kIgnoreIndex (<cls>, padding, later sub-word
// pieces) from both the gold and the predicted tags. Decoding follows conlleval: a span starts at B- or S-,
// at an I- or E- that does not continue a span of its type (an I- without B- starts one), and ends before
// O, B-, S-, a change of type, or after E- / S-. A predicted span counts as correct only with the gold
// span's exact boundaries and type. Counts are summed over the evaluation set (micro average):
//   precision = correct / predicted spans, recall = correct / gold spans (each 0 when its denominator is
//   0), F1 = 2 correct / (predicted + gold) (the harmonic mean of the two; 0 when there are no spans).
//
//   mtl::SpanMetric f1(mtl::SpanMetricOptions({"O", "B-PER", "I-PER"}, mtl::SpanScore::kF1));
//   YAML: metrics: [span_f1, span_precision, span_recall, token_accuracy, {type: span_f1, scheme: bioes}]
//   scheme: bio (tags O, B-, I-) or bioes (also E-, S-); default: bioes when the label has E- or S- tags,
//   else bio. Tag names outside the scheme are a config error.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mtl/metrics/metric.h"

namespace mtl {

/// One span of a tag sequence: positions [begin, end] (inclusive) of type `type` (e.g. "PER").
struct TagSpan {
  int64_t begin = 0;
  int64_t end = 0;
  std::string type;
  bool operator==(const TagSpan& o) const { return begin == o.begin && end == o.end && type == o.type; }
};

/// The tag names of a label, parsed once: prefix ('O', 'B', 'I', 'E', 'S') and type per tag index.
class TagSet {
 public:
  /// Throws std::invalid_argument naming the first tag that is not O or <prefix>-<type> in `scheme`
  /// ("bio" or "bioes").
  TagSet(const std::vector<std::string>& tags, const std::string& scheme);
  /// Spans of a sequence of tag indices (conlleval rules, see the file comment).
  std::vector<TagSpan> spans(const std::vector<int64_t>& tags) const;
  int64_t size() const { return static_cast<int64_t>(prefix_.size()); }

 private:
  std::vector<char> prefix_;
  std::vector<std::string> type_;
};

/// Spans of a sequence of tag names in the bioes scheme (which accepts bio tags too); for tests and tools.
std::vector<TagSpan> decode_spans(const std::vector<std::string>& tags);

/// "bioes" when any tag starts with E- or S-, else "bio".
std::string detect_tag_scheme(const std::vector<std::string>& tags);

enum class SpanScore { kPrecision, kRecall, kF1 };

struct SpanMetricOptions {
  SpanMetricOptions(std::vector<std::string> tags, SpanScore score) : tags_(std::move(tags)), score_(score) {}
  TORCH_ARG(std::vector<std::string>, tags);  // the label's tag names, by tag index (LabelInfo::classes)
  TORCH_ARG(SpanScore, score);
  TORCH_ARG(std::string, scheme) = "";        // bio | bioes; "" = detect_tag_scheme(tags)

 public:
  /// Option `scheme` (bio | bioes); the label must carry its tag names (LabelInfo::classes).
  static SpanMetricOptions from_config(const ConfigNode& options, const LabelInfo& label, SpanScore score);
  /// Throws mtl::Error(key, expected) for the first bad value (tags that are not of the scheme included).
  void validate() const;
};

/// Span precision, recall or F1 (micro average over every sequence seen).
class SpanMetric : public Metric {
 public:
  using Score = SpanScore;
  explicit SpanMetric(SpanMetricOptions options);
  void reset() override { correct_ = predicted_ = gold_ = 0; }
  void update(const at::Tensor& output, const at::Tensor& target) override;
  double compute() const override;
  bool higher_is_better() const override { return true; }
  std::string name() const override;
  std::vector<double> state() const override;
  void merge(const std::vector<double>& part) override;

  int64_t correct() const { return correct_; }
  int64_t predicted() const { return predicted_; }
  int64_t gold() const { return gold_; }

 private:
  TagSet tags_;
  Score score_;
  int64_t correct_ = 0, predicted_ = 0, gold_ = 0;
};

/// Fraction of tagged tokens (target != kIgnoreIndex) whose argmax tag equals the target.
class TokenAccuracy : public Metric {
 public:
  void reset() override { correct_ = total_ = 0; }
  void update(const at::Tensor& output, const at::Tensor& target) override;
  double compute() const override { return total_ == 0 ? 0.0 : static_cast<double>(correct_) / total_; }
  bool higher_is_better() const override { return true; }
  std::string name() const override { return "token_accuracy"; }
  std::vector<double> state() const override;
  void merge(const std::vector<double>& part) override;

 private:
  int64_t correct_ = 0, total_ = 0;
};

/// Registry factories: from_config + constructor (token_accuracy has no options).
std::unique_ptr<Metric> make_span_f1(const ConfigNode& options, const LabelInfo& label);
std::unique_ptr<Metric> make_span_precision(const ConfigNode& options, const LabelInfo& label);
std::unique_ptr<Metric> make_span_recall(const ConfigNode& options, const LabelInfo& label);
std::unique_ptr<Metric> make_token_accuracy(const ConfigNode& options, const LabelInfo& label);

}  // namespace mtl
