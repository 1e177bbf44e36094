// Metric::state/merge, what a distributed evaluation combines: for every built-in metric, fresh metrics that
// merge the states of metrics updated on disjoint parts of random data (uneven parts, one empty) compute what
// one metric updated on all of it does; the counting metrics exactly, the sums to rounding.
#include <torch/torch.h>

#include "mtl/core/error.h"
#include "mtl/metrics/metric.h"
#include "test_util.h"

namespace {

struct Case {
  std::string yaml;
  mtl::LabelInfo label;
  at::Tensor output, target;
};

std::vector<Case> cases() {
  torch::manual_seed(3);
  const int64_t n = 37;
  const mtl::LabelInfo cls{"c", mtl::LabelKind::kClass, 5, {}}, ml{"m", mtl::LabelKind::kMultiLabel, 4, {}},
      real{"r", mtl::LabelKind::kReal, 3, {}},
      tags{"t", mtl::LabelKind::kTokenClass, 5, {"O", "B-PER", "I-PER", "B-LOC", "I-LOC"}};
  const at::Tensor logits = torch::randn({n, 5}), y = torch::randint(0, 5, {n}, torch::kLong);
  const at::Tensor ml_logits = torch::randn({n, 4}), ml_y = torch::randint(0, 2, {n, 4}).to(torch::kFloat);
  const at::Tensor values = torch::randn({n, 3}, torch::kDouble),
                   real_y = torch::randn({n, 3}, torch::kDouble) * 2 + 5;
  at::Tensor tag_logits = torch::randn({n, 6, 5}), tag_y = torch::randint(0, 5, {n, 6}, torch::kLong);
  tag_y.index_put_({torch::randint(0, 2, {n, 6}).to(torch::kBool)}, mtl::kIgnoreIndex);
  return {{"accuracy", cls, logits, y},
          {"accuracy", ml, ml_logits, ml_y},
          {"{type: top_k_accuracy, k: 2}", cls, logits, y},
          {"macro_f1", cls, logits, y},
          {"macro_f1", ml, ml_logits, ml_y},
          {"mae", real, values, real_y},
          {"rmse", real, values, real_y},
          {"r2", real, values, real_y},
          {"span_f1", tags, tag_logits, tag_y},
          {"span_precision", tags, tag_logits, tag_y},
          {"span_recall", tags, tag_logits, tag_y},
          {"token_accuracy", tags, tag_logits, tag_y}};
}

}  // namespace

TEST(MetricMerge, PartsMergedInOrderEqualTheWhole) {
  const std::vector<int64_t> bounds{0, 11, 11, 30, 37};  // four parts, the second empty
  for (const Case& c : cases()) {
    auto whole = mtl_test::make_metric(c.yaml, c.label);
    whole->update(c.output, c.target);
    auto merged = mtl_test::make_metric(c.yaml, c.label);
    for (size_t p = 0; p + 1 < bounds.size(); ++p) {
      auto part = mtl_test::make_metric(c.yaml, c.label);
      const int64_t len = bounds[p + 1] - bounds[p];
      if (len > 0) part->update(c.output.narrow(0, bounds[p], len), c.target.narrow(0, bounds[p], len));
      merged->merge(part->state());
    }
    EXPECT_NEAR(merged->compute(), whole->compute(), 1e-12) << c.yaml << " (" << c.label.name << ")";
    if (c.label.kind != mtl::LabelKind::kReal) EXPECT_EQ(merged->state(), whole->state()) << c.yaml;
  }
}

TEST(MetricMerge, AStateOfTheWrongLengthIsAnError) {
  auto f1 = mtl_test::make_metric("macro_f1", {"c", mtl::LabelKind::kClass, 5, {}});
  auto other = mtl_test::make_metric("macro_f1", {"c", mtl::LabelKind::kClass, 3, {}});
  EXPECT_THROW(f1->merge(other->state()), mtl::Error);
}
