// Metrics built from C++ options agree with the same ones built from YAML (names, direction, values on the
// same data); bad C++ options throw a one-line mtl::Error naming the options struct and the key.
#include <torch/torch.h>

#include "mtl/core/error.h"
#include "mtl/metrics/classification_metrics.h"
#include "mtl/metrics/regression_metrics.h"
#include "mtl/metrics/span_metrics.h"
#include "test_util.h"

namespace {

// Feeds both metrics the same two batches; name, direction and value must agree.
void expect_same_metric(mtl::Metric& cpp, mtl::Metric& yaml, const at::Tensor& output, const at::Tensor& target) {
  const int64_t half = output.size(0) / 2;
  for (mtl::Metric* m : {&cpp, &yaml}) {
    m->update(output.slice(0, 0, half), target.slice(0, 0, half));
    m->update(output.slice(0, half), target.slice(0, half));
  }
  EXPECT_EQ(cpp.name(), yaml.name());
  EXPECT_EQ(cpp.higher_is_better(), yaml.higher_is_better());
  EXPECT_EQ(cpp.compute(), yaml.compute()) << cpp.name();
  EXPECT_GT(cpp.compute(), 0.0) << cpp.name() << ": the data should give a value that can tell metrics apart";
}

}  // namespace

TEST(MetricOptions, CppOptionsAgreeWithYaml) {
  torch::manual_seed(6);
  using mtl_test::make_metric;
  const auto cls = mtl_test::class_label(5), ml = mtl_test::multi_label(4), real = mtl_test::real_label(2);
  const at::Tensor logits = torch::randn({40, 5}), y = torch::randint(0, 5, {40});
  mtl::Accuracy acc(mtl::LabelKind::kClass);
  expect_same_metric(acc, *make_metric("accuracy", cls), logits, y);
  mtl::TopKAccuracy top2(mtl::TopKAccuracyOptions().k(2));
  expect_same_metric(top2, *make_metric("{type: top_k_accuracy, k: 2}", cls), logits, y);
  mtl::MacroF1 f1(mtl::MacroF1Options(mtl::LabelKind::kClass, 5));
  expect_same_metric(f1, *make_metric("macro_f1", cls), logits, y);

  const at::Tensor ml_logits = torch::randn({40, 4}), ml_y = (torch::rand({40, 4}) > 0.5).to(torch::kFloat);
  mtl::Accuracy ml_acc(mtl::LabelKind::kMultiLabel);
  expect_same_metric(ml_acc, *make_metric("accuracy", ml), ml_logits, ml_y);
  mtl::MacroF1 ml_f1(mtl::MacroF1Options(mtl::LabelKind::kMultiLabel, 4));
  expect_same_metric(ml_f1, *make_metric("macro_f1", ml), ml_logits, ml_y);

  const at::Tensor values = torch::randn({40, 2}), targets = values + 0.3 * torch::randn({40, 2});
  mtl::MeanAbsoluteError mae;
  expect_same_metric(mae, *make_metric("mae", real), values, targets);
  mtl::RootMeanSquaredError rmse;
  expect_same_metric(rmse, *make_metric("rmse", real), values, targets);
  mtl::RSquared r2(mtl::RSquaredOptions(2));
  expect_same_metric(r2, *make_metric("r2", real), values, targets);

  const std::vector<std::string> tags{"O", "B-PER", "I-PER", "B-LOC", "I-LOC"};
  const auto tag = mtl_test::tag_label(tags);
  // Gold tags with spans; predictions = gold with some positions changed, so F1 is between 0 and 1.
  const at::Tensor gold = torch::randint(0, 5, {8, 6});
  at::Tensor pred = gold.clone();
  pred.index_put_({torch::randint(0, 8, {6}), torch::randint(0, 6, {6})}, 0);
  const at::Tensor tag_logits = torch::one_hot(pred, 5).to(torch::kFloat);
  for (auto [score, name] : std::vector<std::pair<mtl::SpanScore, std::string>>{
           {mtl::SpanScore::kF1, "span_f1"}, {mtl::SpanScore::kPrecision, "span_precision"},
           {mtl::SpanScore::kRecall, "span_recall"}}) {
    mtl::SpanMetric span(mtl::SpanMetricOptions(tags, score));
    expect_same_metric(span, *make_metric(name, tag), tag_logits, gold);
  }
  mtl::SpanMetric bioes(mtl::SpanMetricOptions(tags, mtl::SpanScore::kF1).scheme("bioes"));
  expect_same_metric(bioes, *make_metric("{type: span_f1, scheme: bioes}", tag), tag_logits, gold);
  mtl::TokenAccuracy token_acc;
  expect_same_metric(token_acc, *make_metric("token_accuracy", tag), tag_logits, gold);
}

TEST(MetricOptions, BadCppOptionsThrowNamingTheKey) {
  EXPECT_MTL_ERROR((void)mtl::Accuracy(mtl::LabelKind::kReal), "AccuracyOptions.kind", "kClass");
  EXPECT_MTL_ERROR((void)mtl::TopKAccuracy(mtl::TopKAccuracyOptions().k(0)), "TopKAccuracyOptions.k", "k >= 1");
  EXPECT_MTL_ERROR((void)mtl::MacroF1(mtl::MacroF1Options(mtl::LabelKind::kClass, 0)), "MacroF1Options.num_classes");
  EXPECT_MTL_ERROR((void)mtl::RSquared(mtl::RSquaredOptions(0)), "RSquaredOptions.dims", "positive");
  EXPECT_MTL_ERROR((void)mtl::SpanMetric(mtl::SpanMetricOptions({"O", "X-PER"}, mtl::SpanScore::kF1)),
                   "SpanMetricOptions.tags", "X-PER");
  EXPECT_MTL_ERROR((void)mtl::SpanMetric(mtl::SpanMetricOptions({"O", "S-PER"}, mtl::SpanScore::kF1).scheme("bio")),
                   "SpanMetricOptions.tags", "not a bio tag");
  EXPECT_MTL_ERROR((void)mtl::SpanMetric(mtl::SpanMetricOptions({"O"}, mtl::SpanScore::kF1).scheme("bilou")),
                   "SpanMetricOptions.scheme", "expected one of: bio, bioes");
  EXPECT_MTL_ERROR((void)mtl::SpanMetric(mtl::SpanMetricOptions({}, mtl::SpanScore::kF1)), "SpanMetricOptions.tags");
}
