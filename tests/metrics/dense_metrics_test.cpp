// Dense prediction metrics (miou, pixel_accuracy, abs_err, rel_err) against hand-computed values, merging of
// parts, and the per-pixel cross-entropy against LibTorch's own.
#include <torch/torch.h>

#include "heads/classification.h"
#include "mtl/metrics/dense_metrics.h"
#include "test_util.h"

namespace {

mtl::LabelInfo pixel_classes(int64_t k) {
  return mtl::LabelInfo{"seg", mtl::LabelKind::kPixelClass, k, {}, {2, 3}};
}

// Logits whose arg-max per pixel is `pred` [B, H, W].
torch::Tensor logits_for(const torch::Tensor& pred, int64_t k) {
  return torch::one_hot(pred, k).permute({0, 3, 1, 2}).to(torch::kFloat) * 5.0;
}

}  // namespace

TEST(DenseMetrics, HandComputedIoUAndPixelAccuracy) {
  // target / predicted, one example of 2 x 3 pixels, 3 classes:
  //   0 0 1      0 1 1        class 0: inter 1, union 3 -> 1/3; class 1: inter 2, union 3 -> 2/3
  //   1 2 2      1 2 0        class 2: inter 1, union 2 -> 1/2;  miou = (1/3 + 2/3 + 1/2) / 3 = 1/2
  torch::Tensor y = torch::tensor({0, 0, 1, 1, 2, 2}, torch::kLong).view({1, 2, 3});
  torch::Tensor p = torch::tensor({0, 1, 1, 1, 2, 0}, torch::kLong).view({1, 2, 3});
  EXPECT_NEAR(mtl_test::evaluate_metric("miou", pixel_classes(3), logits_for(p, 3), y), 0.5, 1e-12);
  EXPECT_NEAR(mtl_test::evaluate_metric("pixel_accuracy", pixel_classes(3), logits_for(p, 3), y), 4.0 / 6.0, 1e-12);
  mtl::MeanIoU m(3);
  m.update(logits_for(p, 3), y);
  EXPECT_NEAR(m.iou(0), 1.0 / 3.0, 1e-12);
  EXPECT_NEAR(m.iou(2), 0.5, 1e-12);
  // A class in neither targets nor predictions is left out of the mean.
  EXPECT_NEAR(mtl_test::evaluate_metric("miou", pixel_classes(4), logits_for(p, 4), y), 0.5, 1e-12);
}

TEST(DenseMetrics, PartsMergeToTheWhole) {
  torch::manual_seed(3);
  torch::Tensor logits = torch::randn({10, 4, 5, 6});
  torch::Tensor y = torch::randint(0, 4, {10, 5, 6}, torch::kLong);
  torch::Tensor v = torch::rand({10, 5, 6}) * (torch::rand({10, 5, 6}) > 0.3).to(torch::kFloat);
  torch::Tensor x = torch::rand({10, 5, 6});
  for (const std::string name : {"miou", "pixel_accuracy", "abs_err", "rel_err"}) {
    SCOPED_TRACE(name);
    const bool seg = name == "miou" || name == "pixel_accuracy";
    mtl::LabelInfo label = seg ? pixel_classes(4) : mtl::LabelInfo{"v", mtl::LabelKind::kPixelReal, 1, {}, {5, 6}};
    torch::Tensor out = seg ? logits : x, target = seg ? y : v;
    auto whole = mtl_test::make_metric(name, label);
    whole->update(out, target);
    auto a = mtl_test::make_metric(name, label), b = mtl_test::make_metric(name, label);
    a->update(out.slice(0, 0, 3), target.slice(0, 0, 3));
    b->update(out.slice(0, 3), target.slice(0, 3));
    auto merged = mtl_test::make_metric(name, label);
    merged->merge(a->state());
    merged->merge(b->state());
    EXPECT_NEAR(merged->compute(), whole->compute(), 1e-12);
    EXPECT_GT(whole->compute(), 0.0);
  }
}

TEST(DenseMetrics, AbsoluteAndRelativeError) {
  mtl::LabelInfo label{"v", mtl::LabelKind::kPixelReal, 1, {}, {1, 4}};
  torch::Tensor y = torch::tensor({0.0, 0.5, 1.0, 0.25}).view({1, 1, 4});
  torch::Tensor x = torch::tensor({0.1, 0.25, 1.5, 0.25}).view({1, 1, 4});
  // |e| = 0.1, 0.25, 0.5, 0: abs_err 0.85 / 4; rel_err over y > 0: (0.5 + 0.5 + 0) / 3.
  EXPECT_NEAR(mtl_test::evaluate_metric("abs_err", label, x, y), 0.85 / 4, 1e-6);
  EXPECT_NEAR(mtl_test::evaluate_metric("rel_err", label, x, y), 1.0 / 3.0, 1e-6);
  EXPECT_NEAR(mtl_test::evaluate_metric("mae", label, x, y), 0.85 / 4, 1e-6);
}

// Per-pixel cross-entropy: LibTorch's cross_entropy over [B, C, H, W] (the mean over pixels), which is also the
// mean over examples of each example's mean.
TEST(DenseMetrics, PixelCrossEntropyIsLibTorchs) {
  torch::manual_seed(4);
  torch::Tensor logits = torch::randn({3, 4, 5, 6}, torch::kDouble);
  torch::Tensor y = torch::randint(0, 4, {3, 5, 6}, torch::kLong);
  at::Tensor ours = mtl::cross_entropy_loss(logits, y);
  EXPECT_NEAR(ours.item<double>(), torch::nn::functional::cross_entropy(logits, y).item<double>(), 1e-12);
  double per_example = 0;
  for (int64_t i = 0; i < 3; ++i)
    per_example += torch::nn::functional::cross_entropy(logits.slice(0, i, i + 1), y.slice(0, i, i + 1)).item<double>();
  EXPECT_NEAR(ours.item<double>(), per_example / 3, 1e-12);
  EXPECT_THROW(mtl::cross_entropy_loss(logits, y.slice(1, 0, 4)), c10::Error);
}
