// The classification head and the cross_entropy loss, against closed forms and LibTorch's own loss.
#include <torch/torch.h>

#include <cmath>

#include "heads/classification.h"
#include "heads/head.h"
#include "mtl/config/config_node.h"
#include "test_util.h"

namespace F = torch::nn::functional;

namespace {

using mtl_test::make_head;
using mtl_test::make_loss;

const mtl::LabelInfo kThreeClasses{"digit", mtl::LabelKind::kClass, 3, {}};

// Logits chosen so that the softmax rows are simple fractions:
//   row 0 = [0, ln 2, 0] -> p = [1/4, 1/2, 1/4]
//   row 1 = [ln 3, 0, 0] -> p = [3/5, 1/5, 1/5]
//   row 2 = [0, 0, 0]    -> p = [1/3, 1/3, 1/3]
// with targets y = [1, 0, 2], so the per-example NLL is [ln 2, ln 5/3, ln 3].
at::Tensor logits() {
  return torch::tensor({0.0, std::log(2.0), 0.0, std::log(3.0), 0.0, 0.0, 0.0, 0.0, 0.0}, torch::kDouble)
      .reshape({3, 3});
}
at::Tensor targets() { return torch::tensor({1, 0, 2}, torch::kLong); }

const double ln2 = std::log(2.0), ln3 = std::log(3.0), ln5 = std::log(5.0);

}  // namespace

TEST(HeadClassification, OutputShapeAndPredict) {
  mtl::Head head = make_head("{type: classification, hidden: [5]}", 4, kThreeClasses);
  EXPECT_EQ(head->forward(torch::randn({7, 4})).sizes(), (std::vector<int64_t>{7, 3}));
  at::Tensor out = torch::tensor({0.1, 2.0, -1.0, 3.0, 0.0, 0.0, 0.0, 0.0, 5.0}).reshape({3, 3});
  at::Tensor pred = head->predict(out);
  EXPECT_EQ(pred.scalar_type(), torch::kLong);
  EXPECT_TRUE(torch::equal(pred, torch::tensor({1, 0, 2}, torch::kLong)));
}

TEST(HeadClassification, NumClassesMustMatchTheLabel) {
  EXPECT_NO_THROW(make_head("{type: classification, num_classes: 3}", 4, kThreeClasses));
  EXPECT_MTL_ERROR(make_head("{type: classification, num_classes: 4}", 4, kThreeClasses), "num_classes",
                   "expected 3", "digit");
}

TEST(HeadClassification, TrainsThroughTheDefaultLoss) {
  mtl::Head head = make_head("{type: classification, hidden: [6]}", 4, kThreeClasses);
  mtl::LossFn loss = make_loss(mtl::head_registry().get("classification").default_loss, kThreeClasses);
  loss(head->forward(torch::randn({5, 4})), torch::tensor({0, 1, 2, 1, 0}, torch::kLong)).backward();
  for (const auto& p : head->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key();
  }
}

TEST(LossCrossEntropy, PlainMatchesClosedFormAndLibTorch) {
  // mean(ln 2, ln 5/3, ln 3) = ln(2 * 5/3 * 3) / 3 = ln(10) / 3
  at::Tensor l = make_loss("cross_entropy", kThreeClasses)(logits(), targets());
  EXPECT_NEAR(l.item<double>(), std::log(10.0) / 3, 1e-12);
  EXPECT_NEAR(l.item<double>(), F::cross_entropy(logits(), targets()).item<double>(), 1e-12);
}

TEST(LossCrossEntropy, LabelSmoothingMatchesClosedFormAndLibTorch) {
  // eps = 0.3, C = 3: l_i = 0.7 * nll_i - 0.1 * sum_c log p_ic
  //   row 0: sum log p = ln 1/4 + ln 1/2 + ln 1/4 = -5 ln 2  -> 0.7 ln 2 + 0.5 ln 2 = 1.2 ln 2
  //   row 1: sum log p = ln 3/5 + 2 ln 1/5 = ln 3 - 3 ln 5   -> 0.7 (ln 5 - ln 3) - 0.1 ln 3 + 0.3 ln 5
  //                                                           = ln 5 - 0.8 ln 3
  //   row 2: sum log p = -3 ln 3                             -> 0.7 ln 3 + 0.3 ln 3 = ln 3
  //   mean = (1.2 ln 2 + ln 5 + 0.2 ln 3) / 3
  at::Tensor l = make_loss("{type: cross_entropy, label_smoothing: 0.3}", kThreeClasses)(logits(), targets());
  EXPECT_NEAR(l.item<double>(), (1.2 * ln2 + ln5 + 0.2 * ln3) / 3, 1e-12);
  auto torch_l = F::cross_entropy(logits(), targets(), F::CrossEntropyFuncOptions().label_smoothing(0.3));
  EXPECT_NEAR(l.item<double>(), torch_l.item<double>(), 1e-12);
}

TEST(LossCrossEntropy, ClassWeightsArePerExampleMean) {
  // w = [1, 2, 4], y = [1, 0, 2] -> w[y] = [2, 1, 4]
  // mean_i w[y_i] nll_i = (2 ln 2 + ln 5/3 + 4 ln 3) / 3 = (2 ln 2 + ln 5 + 3 ln 3) / 3
  at::Tensor l = make_loss("{type: cross_entropy, class_weights: [1, 2, 4]}", kThreeClasses)(logits(), targets());
  EXPECT_NEAR(l.item<double>(), (2 * ln2 + ln5 + 3 * ln3) / 3, 1e-12);
  // LibTorch's unreduced weighted loss is w[y_i] * nll_i, so its plain mean agrees ...
  at::Tensor w = torch::tensor({1.0, 2.0, 4.0}, torch::kDouble);
  auto opts = F::CrossEntropyFuncOptions().weight(w);
  EXPECT_NEAR(l.item<double>(), F::cross_entropy(logits(), targets(), opts.reduction(torch::kNone)).mean().item<double>(),
              1e-12);
  // ... while its reduction=mean divides by sum w[y_i] = 7 instead of by the 3 examples.
  EXPECT_NEAR(F::cross_entropy(logits(), targets(), opts.reduction(torch::kMean)).item<double>(),
              (2 * ln2 + ln5 + 3 * ln3) / 7, 1e-12);
}

TEST(LossCrossEntropy, ClassWeightsWithLabelSmoothing) {
  // The smoothed per-example losses from above, [1.2 ln 2, ln 5 - 0.8 ln 3, ln 3], weighted by w[y] = [2, 1, 4]:
  //   (2.4 ln 2 + ln 5 - 0.8 ln 3 + 4 ln 3) / 3 = (2.4 ln 2 + ln 5 + 3.2 ln 3) / 3
  at::Tensor l = make_loss("{type: cross_entropy, label_smoothing: 0.3, class_weights: [1, 2, 4]}",
                           kThreeClasses)(logits(), targets());
  EXPECT_NEAR(l.item<double>(), (2.4 * ln2 + ln5 + 3.2 * ln3) / 3, 1e-12);
}

TEST(LossCrossEntropy, FloatLogitsWork) {
  at::Tensor l = make_loss("{type: cross_entropy, class_weights: [1, 2, 4]}", kThreeClasses)(
      logits().to(torch::kFloat), targets());
  EXPECT_EQ(l.scalar_type(), torch::kFloat);
  EXPECT_NEAR(l.item<double>(), (2 * ln2 + ln5 + 3 * ln3) / 3, 1e-6);
}

TEST(LossCrossEntropy, BadOptionsNameTheKey) {
  EXPECT_MTL_ERROR(make_loss("{type: cross_entropy, label_smoothing: 1.0}", kThreeClasses), "label_smoothing",
                   "[0, 1)");
  EXPECT_MTL_ERROR(make_loss("{type: cross_entropy, label_smoothing: 1.5}", kThreeClasses), "label_smoothing");
  EXPECT_MTL_ERROR(make_loss("{type: cross_entropy, label_smoothing: -0.1}", kThreeClasses), "label_smoothing");
  EXPECT_MTL_ERROR(make_loss("{type: cross_entropy, class_weights: [1, 2]}", kThreeClasses), "class_weights",
                   "list of 3 positive numbers", "got 2");
  EXPECT_MTL_ERROR(make_loss("{type: cross_entropy, class_weights: [1, 0, 2]}", kThreeClasses), "class_weights",
                   "positive");
  EXPECT_MTL_ERROR(make_loss("{type: cross_entropy, class_weights: heavy}", kThreeClasses), "class_weights",
                   "list of a number");
}

TEST(LossCrossEntropy, UnknownKeyIsAnError) {
  EXPECT_MTL_ERROR(make_loss("{type: cross_entropy, label_smoothng: 0.1}", kThreeClasses), "label_smoothng",
                   "did you mean 'label_smoothing'");
}
