// mae, rmse and r2 against hand-computed values.
#include <torch/torch.h>

#include <cmath>

#include "mtl/config/config_node.h"
#include "mtl/metrics/metric.h"
#include "mtl/metrics/regression_metrics.h"
#include "test_util.h"

namespace {

using mtl_test::make_metric;
constexpr auto evaluate = mtl_test::evaluate_metric;
using mtl_test::real_label;

// output [1, 2, 4], target [1.5, 0, 4]: errors [-0.5, 2, 0]
//   mae  = 2.5 / 3
//   rmse = sqrt(4.25 / 3)
//   r2: target mean 5.5 / 3 = 11/6; SS_tot = (1/3)^2 + (11/6)^2 + (13/6)^2 = (4 + 121 + 169) / 36 = 49/6
//       SS_res = 4.25 = 17/4; R^2 = 1 - (17/4) / (49/6) = 1 - 51/98 = 47/98
at::Tensor output() { return torch::tensor({1.0, 2.0, 4.0}); }
at::Tensor target() { return torch::tensor({1.5, 0.0, 4.0}); }

}  // namespace

TEST(MetricRegression, HandComputedValues) {
  EXPECT_NEAR(evaluate("mae", real_label(1), output(), target()), 2.5 / 3, 1e-12);
  EXPECT_NEAR(evaluate("rmse", real_label(1), output(), target()), std::sqrt(4.25 / 3), 1e-12);
  EXPECT_NEAR(evaluate("r2", real_label(1), output(), target()), 47.0 / 98, 1e-12);
}

TEST(MetricRegression, NamesAndDirection) {
  EXPECT_EQ(make_metric("mae", real_label(1))->name(), "mae");
  EXPECT_EQ(make_metric("rmse", real_label(1))->name(), "rmse");
  EXPECT_EQ(make_metric("r2", real_label(1))->name(), "r2");
  EXPECT_FALSE(make_metric("mae", real_label(1))->higher_is_better());
  EXPECT_FALSE(make_metric("rmse", real_label(1))->higher_is_better());
  EXPECT_TRUE(make_metric("r2", real_label(1))->higher_is_better());
}

TEST(MetricR2, SeveralDimensionsUsePerDimensionMeans) {
  // outputs [[1, 10], [2, 20], [3, 30]], targets [[1, 12], [3, 20], [2, 31]]
  //   dim 0: targets [1, 3, 2], mean 2, SS_tot 1 + 1 + 0 = 2;  errors [0, -1, 1] -> 2
  //   dim 1: targets [12, 20, 31], mean 21, SS_tot 81 + 1 + 100 = 182;  errors [-2, 0, -1] -> 5
  //   R^2 = 1 - (2 + 5) / (2 + 182) = 177 / 184
  at::Tensor out = torch::tensor({1.0, 10.0, 2.0, 20.0, 3.0, 30.0}).reshape({3, 2});
  at::Tensor tgt = torch::tensor({1.0, 12.0, 3.0, 20.0, 2.0, 31.0}).reshape({3, 2});
  EXPECT_NEAR(evaluate("r2", real_label(2), out, tgt), 177.0 / 184, 1e-12);
  // mae and rmse over all six elements: |errors| sum 0+2+1+0+1+1 = 5 -> 5/6; squares 7 -> sqrt(7/6)
  EXPECT_NEAR(evaluate("mae", real_label(2), out, tgt), 5.0 / 6, 1e-12);
  EXPECT_NEAR(evaluate("rmse", real_label(2), out, tgt), std::sqrt(7.0 / 6), 1e-12);
}

TEST(MetricR2, ConstantTargets) {
  // SS_tot = 0: 1 for a perfect fit, else 0.
  EXPECT_EQ(evaluate("r2", real_label(1), torch::tensor({2.0, 2.0}), torch::tensor({2.0, 2.0})), 1.0);
  EXPECT_EQ(evaluate("r2", real_label(1), torch::tensor({1.0, 2.0}), torch::tensor({2.0, 2.0})), 0.0);
  EXPECT_EQ(make_metric("r2", real_label(1))->compute(), 0.0);  // no data
}

TEST(MetricR2, ResetForgetsEverything) {
  auto m = make_metric("r2", real_label(1));
  m->update(torch::tensor({5.0, -3.0}), torch::tensor({0.0, 1.0}));
  m->reset();
  m->update(output(), target());
  EXPECT_NEAR(m->compute(), 47.0 / 98, 1e-12);
}

TEST(MetricRegression, BatchSplittingInvariance) {
  torch::manual_seed(5);
  for (int64_t dims : {1, 3}) {
    // A large offset: a naive sum y^2 - (sum y)^2 / n would lose most digits here.
    at::Tensor tgt = 1e6 + (dims == 1 ? torch::randn({40}, torch::kDouble) : torch::randn({40, dims}, torch::kDouble));
    at::Tensor out = tgt + 0.3 * torch::randn_like(tgt);
    for (const char* name : {"mae", "rmse", "r2"}) {
      SCOPED_TRACE(std::string(name) + " dims " + std::to_string(dims));
      auto whole = make_metric(name, real_label(dims));
      whole->update(out, tgt);
      auto pieces = make_metric(name, real_label(dims));
      int64_t begin = 0;
      for (int64_t size : {1, 2, 17, 20}) {
        pieces->update(out.slice(0, begin, begin + size), tgt.slice(0, begin, begin + size));
        begin += size;
      }
      EXPECT_NEAR(whole->compute(), pieces->compute(), 1e-9);
    }
  }
  // r2 at that offset is still right: targets spread ~1, errors ~0.3 -> R^2 near 1 - 0.09 = 0.91.
  at::Tensor tgt = 1e6 + torch::randn({2000}, torch::kDouble);
  at::Tensor out = tgt + 0.3 * torch::randn_like(tgt);
  auto m = make_metric("r2", real_label(1));
  for (int64_t b = 0; b < 2000; b += 100) m->update(out.slice(0, b, b + 100), tgt.slice(0, b, b + 100));
  at::Tensor mean = tgt.mean();
  double expected = 1 - (out - tgt).square().sum().item<double>() / (tgt - mean).square().sum().item<double>();
  EXPECT_NEAR(m->compute(), expected, 1e-9);
  EXPECT_NEAR(m->compute(), 0.91, 0.03);
}
