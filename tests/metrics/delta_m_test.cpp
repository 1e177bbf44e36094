// delta-m against hand-computed values: direction of each metric, several tasks and metrics, a zero
// baseline (skipped), a negative baseline (|M_b|), and baselines that lack a task or a metric.
#include "mtl/metrics/delta_m.h"

#include <gtest/gtest.h>

namespace {

using mtl::MetricScore;

}  // namespace

TEST(DeltaM, HigherIsBetterImprovementIsPositive) {
  // (0.9 - 0.8) / 0.8 = +12.5%
  mtl::DeltaM d = mtl::delta_m({{"a", "accuracy", 0.9, true}}, {{"a", "accuracy", 0.8, true}});
  ASSERT_TRUE(d.valid);
  EXPECT_NEAR(d.percent, 12.5, 1e-12);
  EXPECT_EQ(d.terms, 1);
  d = mtl::delta_m({{"a", "accuracy", 0.6, true}}, {{"a", "accuracy", 0.8, true}});
  EXPECT_NEAR(d.percent, -25.0, 1e-12);
}

TEST(DeltaM, LowerIsBetterIncreaseIsNegative) {
  // MAE 0.5 against 0.4: worse by 25% -> -25; MAE 0.3 against 0.4: better by 25% -> +25
  EXPECT_NEAR(mtl::delta_m({{"r", "mae", 0.5, false}}, {{"r", "mae", 0.4, false}}).percent, -25.0, 1e-12);
  EXPECT_NEAR(mtl::delta_m({{"r", "mae", 0.3, false}}, {{"r", "mae", 0.4, false}}).percent, 25.0, 1e-12);
}

TEST(DeltaM, MeanOverEveryTaskAndMetricWithPerTaskMeans) {
  std::vector<MetricScore> mt = {{"cls", "accuracy", 0.6, true},
                                 {"cls", "macro_f1", 0.45, true},
                                 {"reg", "mae", 1.5, false},
                                 {"reg", "r2", -0.2, true}};
  // Baseline listed in another order, with an extra metric the multi-task run does not have.
  std::vector<MetricScore> b = {{"reg", "r2", -0.4, true},
                                {"reg", "mae", 2.0, false},
                                {"cls", "macro_f1", 0.5, true},
                                {"cls", "accuracy", 0.5, true},
                                {"cls", "top3_accuracy", 0.9, true}};
  // cls: +20% (accuracy), -10% (F1); reg: +25% (MAE 2.0 -> 1.5), +50% (R^2 -0.4 -> -0.2, over |-0.4|)
  mtl::DeltaM d = mtl::delta_m(mt, b);
  ASSERT_TRUE(d.valid);
  EXPECT_EQ(d.terms, 4);
  EXPECT_NEAR(d.percent, (20.0 - 10.0 + 25.0 + 50.0) / 4.0, 1e-12);
  ASSERT_EQ(d.per_task.size(), 2u);
  EXPECT_EQ(d.per_task[0].first, "cls");
  EXPECT_NEAR(d.per_task[0].second, 5.0, 1e-12);
  EXPECT_EQ(d.per_task[1].first, "reg");
  EXPECT_NEAR(d.per_task[1].second, 37.5, 1e-12);
  EXPECT_TRUE(d.skipped.empty());
  EXPECT_TRUE(d.missing.empty());
}

TEST(DeltaM, IdenticalResultsGiveZero) {
  std::vector<MetricScore> s = {{"a", "accuracy", 0.7, true}, {"b", "rmse", 3.0, false}};
  mtl::DeltaM d = mtl::delta_m(s, s);
  ASSERT_TRUE(d.valid);
  EXPECT_EQ(d.percent, 0.0);
}

TEST(DeltaM, ZeroBaselineIsSkippedAndNamed) {
  mtl::DeltaM d = mtl::delta_m({{"a", "accuracy", 0.5, true}, {"b", "accuracy", 0.3, true}},
                               {{"a", "accuracy", 0.0, true}, {"b", "accuracy", 0.2, true}});
  ASSERT_TRUE(d.valid);
  EXPECT_EQ(d.terms, 1);
  EXPECT_NEAR(d.percent, 50.0, 1e-12);
  ASSERT_EQ(d.skipped.size(), 1u);
  EXPECT_EQ(d.skipped[0], "a/accuracy");
  EXPECT_NE(mtl::describe_delta_m(d).find("skipped (baseline 0): a/accuracy"), std::string::npos);
  // Only zero baselines: nothing to average.
  d = mtl::delta_m({{"a", "accuracy", 0.5, true}}, {{"a", "accuracy", 0.0, true}});
  EXPECT_FALSE(d.valid);
  EXPECT_NE(mtl::describe_delta_m(d).find("not computed"), std::string::npos);
}

TEST(DeltaM, MissingTaskOrMetricMeansNoDeltaM) {
  mtl::DeltaM d = mtl::delta_m({{"a", "accuracy", 0.5, true}, {"a", "macro_f1", 0.4, true}, {"c", "mae", 1.0, false},
                                {"c", "rmse", 1.0, false}},
                               {{"a", "accuracy", 0.4, true}});
  EXPECT_FALSE(d.valid);
  EXPECT_EQ(d.missing, (std::vector<std::string>{"a/macro_f1", "c"}));
  std::string text = mtl::describe_delta_m(d);
  EXPECT_NE(text.find("the baselines lack a/macro_f1, c"), std::string::npos) << text;
}

TEST(DeltaM, DescriptionStatesTheSignConvention) {
  mtl::DeltaM d = mtl::delta_m({{"a", "accuracy", 0.44, true}}, {{"a", "accuracy", 0.4, true}});
  std::string text = mtl::describe_delta_m(d);
  EXPECT_NE(text.find("delta-m +10.00%"), std::string::npos) << text;
  EXPECT_NE(text.find("positive = multi-task better"), std::string::npos) << text;
  EXPECT_EQ(mtl::format_percent(-0.404), "-0.40%");
}
