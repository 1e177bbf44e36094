#include "mtl/metrics/span_metrics.h"

#include <stdexcept>

#include "mtl/config/config_node.h"
#include "mtl/config/option_check.h"

namespace mtl {

namespace {

void check_token_shapes(const char* metric, const at::Tensor& output, const at::Tensor& target) {
  TORCH_CHECK(output.dim() == 3 && target.dim() == 2 && output.size(0) == target.size(0) &&
                  output.size(1) == target.size(1),
              metric, ": expected outputs [B, L, C] and tags [B, L], got ", output.sizes(), " and ", target.sizes());
}

// conlleval's endOfChunk / startOfChunk, on (prefix, type) of the previous and the current tag.
bool ends_span(char prev, char tag, const std::string& prev_type, const std::string& type) {
  if (prev == 'E' || prev == 'S') return true;
  if ((prev == 'B' || prev == 'I') && (tag == 'B' || tag == 'S' || tag == 'O')) return true;
  return prev != 'O' && prev_type != type;
}

bool starts_span(char prev, char tag, const std::string& prev_type, const std::string& type) {
  if (tag == 'B' || tag == 'S') return true;
  if ((prev == 'E' || prev == 'S' || prev == 'O') && (tag == 'E' || tag == 'I')) return true;
  return tag != 'O' && prev_type != type;
}

}  // namespace

TagSet::TagSet(const std::vector<std::string>& tags, const std::string& scheme) {
  const std::string prefixes = scheme == "bioes" ? "BIES" : "BI";
  for (const std::string& t : tags) {
    if (t == "O") {
      prefix_.push_back('O');
      type_.emplace_back();
      continue;
    }
    const bool known = t.size() >= 3 && t[1] == '-' && std::string("BIES").find(t[0]) != std::string::npos;
    if (!known)
      throw std::invalid_argument("tag '" + t + "' is neither O nor B-, I-, E-, S- followed by a type");
    if (prefixes.find(t[0]) == std::string::npos)
      throw std::invalid_argument("tag '" + t + "' is not a " + scheme + " tag (set scheme: bioes)");
    prefix_.push_back(t[0]);
    type_.push_back(t.substr(2));
  }
}

std::vector<TagSpan> TagSet::spans(const std::vector<int64_t>& tags) const {
  std::vector<TagSpan> out;
  char prev = 'O';
  std::string prev_type;
  int64_t begin = -1;  // start of the open span, -1 when none
  const int64_t n = static_cast<int64_t>(tags.size());
  for (int64_t i = 0; i < n; ++i) {
    TORCH_CHECK(tags[i] >= 0 && tags[i] < size(), "span metrics: tag index ", tags[i], " outside [0, ", size(), ")");
    const char tag = prefix_[tags[i]];
    const std::string& type = type_[tags[i]];
    if (begin >= 0 && ends_span(prev, tag, prev_type, type)) {
      out.push_back({begin, i - 1, prev_type});
      begin = -1;
    }
    if (starts_span(prev, tag, prev_type, type)) begin = i;
    prev = tag;
    prev_type = type;
  }
  if (begin >= 0) out.push_back({begin, n - 1, prev_type});
  return out;
}

std::vector<TagSpan> decode_spans(const std::vector<std::string>& tags) {
  TagSet set(tags, "bioes");
  std::vector<int64_t> idx(tags.size());
  for (size_t i = 0; i < tags.size(); ++i) idx[i] = static_cast<int64_t>(i);
  return set.spans(idx);
}

std::string detect_tag_scheme(const std::vector<std::string>& tags) {
  for (const std::string& t : tags)
    if (t.size() >= 2 && t[1] == '-' && (t[0] == 'E' || t[0] == 'S')) return "bioes";
  return "bio";
}

namespace {

std::string scheme_of(const SpanMetricOptions& o) {
  return o.scheme().empty() ? detect_tag_scheme(o.tags()) : o.scheme();
}

// The options' TagSet; mtl::Error(key, expected) for bad options.
TagSet tag_set(const SpanMetricOptions& o) {
  check(!o.tags().empty(), "tags", "expected the label's tag names, e.g. O, B-PER, I-PER");
  if (!o.scheme().empty()) check_choice("scheme", o.scheme(), {"bio", "bioes"});
  try {
    return TagSet(o.tags(), scheme_of(o));
  } catch (const std::invalid_argument& e) {
    throw Error("tags", e.what());
  }
}

}  // namespace

SpanMetricOptions SpanMetricOptions::from_config(const ConfigNode& n, const LabelInfo& label, SpanScore score) {
  if (label.classes.empty() || static_cast<int64_t>(label.classes.size()) != label.size)
    n.fail("", "span metrics decode spans from tag names, but label '" + label.name +
                   "' has no tag names (its dataset must list them, e.g. O, B-PER, I-PER)");
  SpanMetricOptions o(label.classes, score);
  o.scheme(n.choice("scheme", detect_tag_scheme(label.classes), {"bio", "bioes"}));
  try {
    (void)TagSet(label.classes, o.scheme());
  } catch (const std::invalid_argument& e) {
    n.fail("scheme", std::string("label '") + label.name + "': " + e.what() +
                         "; tags without spans (e.g. part-of-speech) take metrics: [token_accuracy]");
  }
  return o;
}

void SpanMetricOptions::validate() const { (void)tag_set(*this); }

SpanMetric::SpanMetric(SpanMetricOptions options)
    : tags_(validate_options("SpanMetricOptions", [&] { return tag_set(options); })), score_(options.score()) {}

void SpanMetric::update(const at::Tensor& output, const at::Tensor& target) {
  check_token_shapes(name().c_str(), output, target);
  TORCH_CHECK(output.size(2) == tags_.size(), name(), ": expected ", tags_.size(), " tag logits, got ", output.size(2));
  at::Tensor pred = output.detach().argmax(2).to(at::kCPU).contiguous();
  at::Tensor gold = target.detach().to(at::kCPU).to(at::kLong).contiguous();
  const int64_t B = gold.size(0), L = gold.size(1);
  const int64_t* p = pred.data_ptr<int64_t>();
  const int64_t* g = gold.data_ptr<int64_t>();
  std::vector<int64_t> ps, gs;
  for (int64_t b = 0; b < B; ++b) {
    ps.clear();
    gs.clear();
    for (int64_t j = b * L; j < (b + 1) * L; ++j)
      if (g[j] != kIgnoreIndex) {
        gs.push_back(g[j]);
        ps.push_back(p[j]);
      }
    std::vector<TagSpan> want = tags_.spans(gs), got = tags_.spans(ps);
    predicted_ += static_cast<int64_t>(got.size());
    gold_ += static_cast<int64_t>(want.size());
    // Both lists are ordered by position and non-overlapping: one merge pass finds the exact matches.
    size_t i = 0, k = 0;
    while (i < got.size() && k < want.size()) {
      if (got[i] == want[k]) {
        ++correct_;
        ++i;
        ++k;
      } else if (got[i].begin < want[k].begin || (got[i].begin == want[k].begin && got[i].end < want[k].end)) {
        ++i;
      } else {
        ++k;
      }
    }
  }
}

double SpanMetric::compute() const {
  switch (score_) {
    case Score::kPrecision:
      return predicted_ == 0 ? 0.0 : static_cast<double>(correct_) / predicted_;
    case Score::kRecall:
      return gold_ == 0 ? 0.0 : static_cast<double>(correct_) / gold_;
    case Score::kF1:
      break;
  }
  return predicted_ + gold_ == 0 ? 0.0 : 2.0 * static_cast<double>(correct_) / static_cast<double>(predicted_ + gold_);
}

std::string SpanMetric::name() const {
  return score_ == Score::kPrecision ? "span_precision" : score_ == Score::kRecall ? "span_recall" : "span_f1";
}

void TokenAccuracy::update(const at::Tensor& output, const at::Tensor& target) {
  check_token_shapes("token_accuracy", output, target);
  at::Tensor gold = target.detach().to(at::kCPU).to(at::kLong);
  at::Tensor tagged = gold.ne(kIgnoreIndex);
  at::Tensor pred = output.detach().argmax(2).to(at::kCPU);
  correct_ += pred.eq(gold).logical_and(tagged).sum().item<int64_t>();
  total_ += tagged.sum().item<int64_t>();
}

std::unique_ptr<Metric> make_span_f1(const ConfigNode& n, const LabelInfo& label) {
  return std::make_unique<SpanMetric>(SpanMetricOptions::from_config(n, label, SpanScore::kF1));
}
std::unique_ptr<Metric> make_span_precision(const ConfigNode& n, const LabelInfo& label) {
  return std::make_unique<SpanMetric>(SpanMetricOptions::from_config(n, label, SpanScore::kPrecision));
}
std::unique_ptr<Metric> make_span_recall(const ConfigNode& n, const LabelInfo& label) {
  return std::make_unique<SpanMetric>(SpanMetricOptions::from_config(n, label, SpanScore::kRecall));
}
std::unique_ptr<Metric> make_token_accuracy(const ConfigNode&, const LabelInfo&) {
  return std::make_unique<TokenAccuracy>();
}

// Distributed evaluation (Metric::state/merge): the integer counts, exact in double.
std::vector<double> SpanMetric::state() const { return {double(correct_), double(predicted_), double(gold_)}; }
void SpanMetric::merge(const std::vector<double>& part) { merge_counts(*this, part, {&correct_, &predicted_, &gold_}); }

std::vector<double> TokenAccuracy::state() const { return {double(correct_), double(total_)}; }
void TokenAccuracy::merge(const std::vector<double>& part) { merge_counts(*this, part, {&correct_, &total_}); }

}  // namespace mtl
