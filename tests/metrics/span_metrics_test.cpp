// Span metrics (conlleval rules) and token accuracy against hand-computed cases.
#include <torch/torch.h>

#include "mtl/config/config_node.h"
#include "mtl/core/error.h"
#include "mtl/metrics/metric.h"
#include "mtl/metrics/span_metrics.h"
#include "test_util.h"

namespace {

using Spans = std::vector<mtl::TagSpan>;

std::unique_ptr<mtl::Metric> make(const std::string& yaml, const mtl::LabelInfo& label) {
  return mtl_test::make_metric(yaml, label);
}

mtl::LabelInfo bio_label() {
  return {"ner", mtl::LabelKind::kTokenClass, 5, {"O", "B-PER", "I-PER", "B-LOC", "I-LOC"}};
}

// Logits [B, L, C] whose argmax is `pred`.
at::Tensor logits_for(const at::Tensor& pred, int64_t classes) {
  return torch::one_hot(pred, classes).to(torch::kFloat) * 10 - 5;
}

const int64_t I = mtl::kIgnoreIndex;

// Tag ids [rows, n / rows] from a flat list.
at::Tensor tags(std::vector<int64_t> v, int64_t rows = 1) {
  const int64_t n = static_cast<int64_t>(v.size());
  return torch::tensor(v, torch::kLong).view({rows, n / rows});
}

}  // namespace

TEST(SpanDecoding, ConllevalRules) {
  EXPECT_EQ(mtl::decode_spans({"B-PER", "I-PER", "O", "B-LOC"}), (Spans{{0, 1, "PER"}, {3, 3, "LOC"}}));
  // I- without B- starts a span (conlleval is lenient), also right after another type.
  EXPECT_EQ(mtl::decode_spans({"O", "I-PER", "I-PER", "O"}), (Spans{{1, 2, "PER"}}));
  EXPECT_EQ(mtl::decode_spans({"I-PER", "B-PER", "I-PER"}), (Spans{{0, 0, "PER"}, {1, 2, "PER"}}));
  EXPECT_EQ(mtl::decode_spans({"B-PER", "I-LOC"}), (Spans{{0, 0, "PER"}, {1, 1, "LOC"}}));
  EXPECT_EQ(mtl::decode_spans({"B-PER", "B-PER"}), (Spans{{0, 0, "PER"}, {1, 1, "PER"}}));
  // Spans at the end of the sequence close there.
  EXPECT_EQ(mtl::decode_spans({"O", "B-LOC", "I-LOC"}), (Spans{{1, 2, "LOC"}}));
  EXPECT_EQ(mtl::decode_spans({"O", "O"}), Spans{});
  EXPECT_EQ(mtl::decode_spans({}), Spans{});
  // BIOES: S- is a one-token span, E- closes one; E- after O (ill-formed) starts and ends a span.
  EXPECT_EQ(mtl::decode_spans({"S-PER", "B-LOC", "I-LOC", "E-LOC", "O", "E-PER"}),
            (Spans{{0, 0, "PER"}, {1, 3, "LOC"}, {5, 5, "PER"}}));
  EXPECT_EQ(mtl::decode_spans({"B-PER", "E-PER", "I-PER"}), (Spans{{0, 1, "PER"}, {2, 2, "PER"}}));
  EXPECT_EQ(mtl::decode_spans({"S-PER", "S-PER", "I-PER", "E-PER"}),
            (Spans{{0, 0, "PER"}, {1, 1, "PER"}, {2, 3, "PER"}}));
  EXPECT_EQ(mtl::decode_spans({"B-LOC", "E-PER"}), (Spans{{0, 0, "LOC"}, {1, 1, "PER"}}));
}

TEST(SpanMetrics, MicroAveragedExactMatches) {
  // Tags: 0 O, 1 B-PER, 2 I-PER, 3 B-LOC, 4 I-LOC. Ignored positions carry predictions that must not count.
  at::Tensor gold = tags({I, 1, 2, 0, 3, I,  //
                          I, 3, 4, 4, 0, 1},
                         2);
  at::Tensor pred = tags({3, 1, 2, 0, 4, 3,  // PER(0-1) ok; I-LOC after O = LOC(3) ok
                          0, 3, 4, 1, 0, 2},  // LOC(0-1) wrong end; PER(2) spurious; PER(4) at the end ok
                         2);
  at::Tensor out = logits_for(pred, 5);
  // gold spans 4, predicted 5, correct 3
  auto f1 = make("span_f1", bio_label());
  auto p = make("span_precision", bio_label());
  auto r = make("span_recall", bio_label());
  auto acc = make("token_accuracy", bio_label());
  for (auto* m : {f1.get(), p.get(), r.get(), acc.get()}) m->update(out, gold);
  EXPECT_DOUBLE_EQ(p->compute(), 3.0 / 5);
  EXPECT_DOUBLE_EQ(r->compute(), 3.0 / 4);
  EXPECT_DOUBLE_EQ(f1->compute(), 2.0 * 3 / (5 + 4));
  EXPECT_DOUBLE_EQ(acc->compute(), 6.0 / 9);  // 3 of 4 and 3 of 5 tagged tokens
  EXPECT_EQ(f1->name(), "span_f1");
  EXPECT_EQ(acc->name(), "token_accuracy");
  EXPECT_TRUE(f1->higher_is_better());

  // The same examples in two batches of different widths give the same counts.
  auto f1b = make("span_f1", bio_label());
  f1b->update(out.slice(0, 0, 1).slice(1, 0, 5), gold.slice(0, 0, 1).slice(1, 0, 5));
  f1b->update(out.slice(0, 1, 2), gold.slice(0, 1, 2));
  EXPECT_DOUBLE_EQ(f1b->compute(), f1->compute());
  f1b->reset();
  EXPECT_EQ(f1b->compute(), 0.0);
}

TEST(SpanMetrics, NoPredictedSpansGiveZeroNotNaN) {
  at::Tensor gold = tags({I, 1, 2, 0}, 1);
  at::Tensor out = logits_for(torch::zeros({1, 4}, torch::kLong), 5);  // all O
  for (const char* name : {"span_f1", "span_precision", "span_recall"}) {
    auto m = make(name, bio_label());
    EXPECT_EQ(m->compute(), 0.0) << name;  // nothing seen
    m->update(out, gold);
    EXPECT_EQ(m->compute(), 0.0) << name;
  }
  // No gold spans, no predicted spans: 0 as well.
  auto m = make("span_f1", bio_label());
  m->update(out, tags({I, 0, 0, 0}, 1));
  EXPECT_EQ(m->compute(), 0.0);
}

TEST(SpanMetrics, BioesLabels) {
  mtl::LabelInfo label{"ner", mtl::LabelKind::kTokenClass, 5, {"O", "B-PER", "I-PER", "E-PER", "S-PER"}};
  // gold: S-PER, O, B-PER I-PER E-PER -> PER(0), PER(2-4); pred: S-PER, O, B-PER E-PER S-PER -> PER(0), PER(2-3), PER(4)
  at::Tensor gold = tags({I, 4, 0, 1, 2, 3}, 1);
  at::Tensor pred = tags({0, 4, 0, 1, 3, 4}, 1);
  for (const char* yaml : {"span_f1", "{type: span_f1, scheme: bioes}"}) {
    auto m = make(yaml, label);
    m->update(logits_for(pred, 5), gold);
    EXPECT_DOUBLE_EQ(m->compute(), 2.0 * 1 / (3 + 2)) << yaml;
  }
}

TEST(SpanMetrics, ConfigErrors) {
  mtl::LabelInfo bioes{"ner", mtl::LabelKind::kTokenClass, 3, {"O", "S-PER", "E-PER"}};
  EXPECT_THROW(make("{type: span_f1, scheme: bio}", bioes), mtl::Error);
  EXPECT_THROW(make("{type: span_f1, scheme: iob}", bio_label()), mtl::Error);
  mtl::LabelInfo unnamed{"ner", mtl::LabelKind::kTokenClass, 3, {}};
  EXPECT_THROW(make("span_recall", unnamed), mtl::Error);
  mtl::LabelInfo odd{"ner", mtl::LabelKind::kTokenClass, 2, {"O", "PER"}};
  EXPECT_THROW(make("span_precision", odd), mtl::Error);
  EXPECT_NO_THROW(make("token_accuracy", unnamed));
}
