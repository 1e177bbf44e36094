// The multilabel head and the bce_with_logits loss, against closed forms.
#include <torch/torch.h>

#include <cmath>

#include "heads/head.h"
#include "heads/multilabel.h"
#include "mtl/config/config_node.h"
#include "test_util.h"

namespace {

using mtl_test::make_head;
using mtl_test::make_loss;

const mtl::LabelInfo kTwoLabels{"tags", mtl::LabelKind::kMultiLabel, 2, {}};

// sigmoid(0) = 1/2, sigmoid(ln 3) = 3/4, sigmoid(-ln 3) = 1/4.
at::Tensor logits() {
  const double l3 = std::log(3.0);
  return torch::tensor({0.0, l3, -l3, 0.0}, torch::kDouble).reshape({2, 2});
}
at::Tensor targets() { return torch::tensor({1.0, 0.0, 1.0, 1.0}, torch::kDouble).reshape({2, 2}); }

const double ln2 = std::log(2.0);

}  // namespace

TEST(HeadMultilabel, OutputShapeAndPredict) {
  mtl::LabelInfo label{"tags", mtl::LabelKind::kMultiLabel, 3, {}};
  mtl::Head head = make_head("{type: multilabel, hidden: [4], activation: tanh}", 5, label);
  EXPECT_EQ(head->forward(torch::randn({6, 5})).sizes(), (std::vector<int64_t>{6, 3}));
  // A label is predicted when its logit is strictly positive.
  at::Tensor out = torch::tensor({0.5, -0.2, 0.0, -1.0, 2.0, 3.0}).reshape({2, 3});
  at::Tensor pred = head->predict(out);
  EXPECT_EQ(pred.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(pred, torch::tensor({1.0f, 0.0f, 0.0f, 0.0f, 1.0f, 1.0f}).reshape({2, 3})));
}

TEST(LossBceWithLogits, PlainMatchesClosedForm) {
  // element losses: (x=0, y=1) ln 2; (x=ln 3, y=0) -ln(1/4) = 2 ln 2; (x=-ln 3, y=1) -ln(1/4) = 2 ln 2;
  // (x=0, y=1) ln 2. Mean over examples of the mean over labels = 6 ln 2 / 4 = 1.5 ln 2.
  at::Tensor l = make_loss("bce_with_logits", kTwoLabels)(logits(), targets());
  EXPECT_NEAR(l.item<double>(), 1.5 * ln2, 1e-12);
}

TEST(LossBceWithLogits, PosWeightScalesPositiveTerms) {
  // pos_weight = [2, 3] multiplies the terms with y = 1:
  //   (0,0) 2 * ln 2; (0,1) y = 0: 2 ln 2; (1,0) 2 * 2 ln 2 = 4 ln 2; (1,1) 3 * ln 2
  //   mean = (2 + 2 + 4 + 3) ln 2 / 4 = 11 ln 2 / 4
  at::Tensor l = make_loss("{type: bce_with_logits, pos_weight: [2, 3]}", kTwoLabels)(logits(), targets());
  EXPECT_NEAR(l.item<double>(), 11 * ln2 / 4, 1e-12);
  // Float logits with float targets give the same value.
  at::Tensor lf = make_loss("{type: bce_with_logits, pos_weight: [2, 3]}", kTwoLabels)(
      logits().to(torch::kFloat), targets().to(torch::kFloat));
  EXPECT_NEAR(lf.item<double>(), 11 * ln2 / 4, 1e-6);
}

TEST(LossBceWithLogits, BadOptionsNameTheKey) {
  EXPECT_MTL_ERROR(make_loss("{type: bce_with_logits, pos_weight: [1, 2, 3]}", kTwoLabels), "pos_weight",
                   "list of 2 positive numbers", "got 3");
  EXPECT_MTL_ERROR(make_loss("{type: bce_with_logits, pos_weight: [1, -2]}", kTwoLabels), "pos_weight",
                   "positive");
}
