// accuracy, top_k_accuracy and macro_f1 on hand-worked confusion matrices.
#include <torch/torch.h>

#include "mtl/config/config_node.h"
#include "mtl/metrics/classification_metrics.h"
#include "mtl/metrics/metric.h"
#include "test_util.h"

namespace {

using mtl_test::make_metric;
constexpr auto evaluate = mtl_test::evaluate_metric;

mtl::LabelInfo classes(int64_t n) { return {"c", mtl::LabelKind::kClass, n, {}}; }
mtl::LabelInfo labels(int64_t n) { return {"m", mtl::LabelKind::kMultiLabel, n, {}}; }

// Logits whose argmax is `pred`.
at::Tensor logits_for(std::vector<int64_t> pred, int64_t num_classes) {
  return torch::one_hot(torch::tensor(pred, torch::kLong), num_classes).to(torch::kFloat);
}

// Five examples, three classes:   predicted [0, 2, 1, 1, 0]
//                                 target    [0, 1, 1, 2, 0]
// Confusion counts:  class 0: tp 2 (ex 0, 4), fp 0, fn 0          -> F1 = 1
//                    class 1: tp 1 (ex 2), fp 1 (ex 3), fn 1 (ex 1) -> F1 = 2 / (2 + 1 + 1) = 0.5
//                    class 2: tp 0, fp 1 (ex 1), fn 1 (ex 3)        -> F1 = 0
// accuracy = 3 / 5; macro F1 = (1 + 0.5 + 0) / 3 = 0.5
const std::vector<int64_t> kPred{0, 2, 1, 1, 0};
at::Tensor class_targets() { return torch::tensor({0, 1, 1, 2, 0}, torch::kLong); }

// Two examples, labels predicted where logit > 0:
//   logits [[1, -1, 2], [-1, -1, 1]] -> predicted [[1, 0, 1], [0, 0, 1]]
//   target                              [[1, 0, 0], [0, 1, 1]]
// elementwise matches: 1 1 0 / 1 0 1 -> accuracy 4 / 6
// label 0: tp 1            -> F1 1
// label 1: fn 1            -> F1 0
// label 2: tp 1, fp 1      -> F1 2 / (2 + 1) = 2/3
// macro F1 = (1 + 0 + 2/3) / 3 = 5/9
at::Tensor multilabel_logits() { return torch::tensor({1.0, -1.0, 2.0, -1.0, -1.0, 1.0}).reshape({2, 3}); }
at::Tensor multilabel_targets() { return torch::tensor({1.0, 0.0, 0.0, 0.0, 1.0, 1.0}).reshape({2, 3}); }

// Logits with ties, four classes; ties rank the lower class index first (as argmax does).
//   ex 0: [1, 3, 3, 0],     y = 2: class 1 ties and is lower              -> rank 1
//   ex 1: [1, 3, 3, 0],     y = 1: nothing ahead                          -> rank 0
//   ex 2: [2, 2, 2, 2],     y = 3: classes 0, 1, 2 tie and are lower      -> rank 3
//   ex 3: [0, 1, 2, 3],     y = 0: classes 1, 2, 3 greater               -> rank 3
//   ex 4: [0, 1, 1, 0.5],   y = 3: classes 1, 2 greater                  -> rank 2
// top-1 = 1/5 (= accuracy: argmax [1, 1, 0, 3, 1] vs y [2, 1, 3, 0, 3]), top-2 = 2/5, top-3 = 3/5, top-4 = 1
at::Tensor tied_logits() {
  return torch::tensor({1.0, 3.0, 3.0, 0.0, 1.0, 3.0, 3.0, 0.0, 2.0, 2.0, 2.0, 2.0, 0.0, 1.0, 2.0, 3.0,
                        0.0, 1.0, 1.0, 0.5})
      .reshape({5, 4});
}
at::Tensor tied_targets() { return torch::tensor({2, 1, 3, 0, 3}, torch::kLong); }

}  // namespace

TEST(MetricAccuracy, Classes) {
  EXPECT_DOUBLE_EQ(evaluate("accuracy", classes(3), logits_for(kPred, 3), class_targets()), 3.0 / 5);
}

TEST(MetricAccuracy, MultiLabelCountsElements) {
  EXPECT_DOUBLE_EQ(evaluate("accuracy", labels(3), multilabel_logits(), multilabel_targets()), 4.0 / 6);
}

TEST(MetricAccuracy, ResetAndEmpty) {
  auto m = make_metric("accuracy", classes(3));
  EXPECT_EQ(m->compute(), 0.0);
  m->update(logits_for(kPred, 3), class_targets());
  m->reset();
  m->update(logits_for({1}, 3), torch::tensor({1}, torch::kLong));
  EXPECT_EQ(m->compute(), 1.0);
  EXPECT_EQ(m->name(), "accuracy");
  EXPECT_TRUE(m->higher_is_better());
}

TEST(MetricTopK, TiesRankTheLowerIndexFirst) {
  EXPECT_DOUBLE_EQ(evaluate("{type: top_k_accuracy, k: 1}", classes(4), tied_logits(), tied_targets()), 1.0 / 5);
  EXPECT_DOUBLE_EQ(evaluate("accuracy", classes(4), tied_logits(), tied_targets()), 1.0 / 5);
  EXPECT_DOUBLE_EQ(evaluate("{type: top_k_accuracy, k: 2}", classes(4), tied_logits(), tied_targets()), 2.0 / 5);
  EXPECT_DOUBLE_EQ(evaluate("{type: top_k_accuracy, k: 3}", classes(4), tied_logits(), tied_targets()), 3.0 / 5);
  EXPECT_DOUBLE_EQ(evaluate("{type: top_k_accuracy, k: 4}", classes(4), tied_logits(), tied_targets()), 1.0);
}

TEST(MetricTopK, NameAndDefaultK) {
  EXPECT_EQ(make_metric("{type: top_k_accuracy, k: 3}", classes(4))->name(), "top3_accuracy");
  auto m = make_metric("top_k_accuracy", classes(10));
  EXPECT_EQ(m->name(), "top5_accuracy");
  EXPECT_TRUE(m->higher_is_better());
}

TEST(MetricTopK, BadKNamesTheKey) {
  EXPECT_MTL_ERROR(make_metric("{type: top_k_accuracy, k: 5}", classes(4)), "k", "1 <= k <= 4", "got 5");
  EXPECT_MTL_ERROR(make_metric("{type: top_k_accuracy, k: 0}", classes(4)), "k", "1 <= k <= 4");
}

TEST(MetricTopK, DefaultKTooLargeForFewClasses) {
  // The default k = 5 does not fit three classes; the message locates the (absent) key.
  EXPECT_MTL_ERROR(make_metric("top_k_accuracy", classes(3)), "(x.k)", "1 <= k <= 3", "got 5");
}

TEST(MetricMacroF1, Classes) {
  EXPECT_DOUBLE_EQ(evaluate("macro_f1", classes(3), logits_for(kPred, 3), class_targets()), 0.5);
}

TEST(MetricMacroF1, AbsentClassIsLeftOut) {
  // A fourth class that occurs in neither targets nor predictions does not change the average.
  EXPECT_DOUBLE_EQ(evaluate("macro_f1", classes(4), logits_for(kPred, 4), class_targets()), 0.5);
  // A class that only occurs as a target counts with F1 0:
  //   pred [0, 0], target [0, 1]: class 0 tp 1, fp 1 -> 2/3; class 1 fn 1 -> 0; mean 1/3
  EXPECT_DOUBLE_EQ(evaluate("macro_f1", classes(4), logits_for({0, 0}, 4), torch::tensor({0, 1}, torch::kLong)),
                   1.0 / 3);
}

TEST(MetricMacroF1, MultiLabel) {
  EXPECT_DOUBLE_EQ(evaluate("macro_f1", labels(3), multilabel_logits(), multilabel_targets()), 5.0 / 9);
  // An extra label, negative in targets and predictions alike, is left out.
  at::Tensor logits = torch::cat({multilabel_logits(), -torch::ones({2, 1})}, 1);
  at::Tensor targets = torch::cat({multilabel_targets(), torch::zeros({2, 1})}, 1);
  EXPECT_DOUBLE_EQ(evaluate("macro_f1", labels(4), logits, targets), 5.0 / 9);
}

TEST(MetricMacroF1, NothingOccursGivesZero) {
  auto m = make_metric("macro_f1", labels(2));
  EXPECT_EQ(m->compute(), 0.0);
  m->update(-torch::ones({3, 2}), torch::zeros({3, 2}));
  EXPECT_EQ(m->compute(), 0.0);
  EXPECT_EQ(m->name(), "macro_f1");
  EXPECT_TRUE(m->higher_is_better());
}

TEST(MetricClassification, BatchSplittingInvariance) {
  torch::manual_seed(4);
  const int64_t n = 23, c = 5;
  at::Tensor logits = torch::randn({n, c});
  logits.index_put_({torch::indexing::Slice(0, 4)}, 0.0);  // some all-tied rows
  at::Tensor y = torch::randint(c, {n}, torch::kLong);
  at::Tensor ml_logits = torch::randn({n, c});
  at::Tensor ml_y = (torch::rand({n, c}) > 0.6).to(torch::kFloat);
  struct Case { std::string yaml; mtl::LabelInfo label; at::Tensor out, target; };
  std::vector<Case> cases{{"accuracy", classes(c), logits, y},
                          {"{type: top_k_accuracy, k: 2}", classes(c), logits, y},
                          {"macro_f1", classes(c), logits, y},
                          {"accuracy", labels(c), ml_logits, ml_y},
                          {"macro_f1", labels(c), ml_logits, ml_y}};
  for (const Case& k : cases) {
    SCOPED_TRACE(k.yaml + " " + mtl::to_string(k.label.kind));
    auto whole = make_metric(k.yaml, k.label);
    whole->update(k.out, k.target);
    auto pieces = make_metric(k.yaml, k.label);
    int64_t begin = 0;
    for (int64_t size : {1, 7, 10, 5}) {
      pieces->update(k.out.slice(0, begin, begin + size), k.target.slice(0, begin, begin + size));
      begin += size;
    }
    ASSERT_EQ(begin, n);
    EXPECT_EQ(whole->compute(), pieces->compute());
  }
}
