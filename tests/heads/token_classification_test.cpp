// token_classification head and token_cross_entropy loss: shapes, predictions, the per-example mean over
// tagged tokens against a hand computation, and option errors.
#include <torch/torch.h>

#include <cmath>

#include "heads/head.h"
#include "heads/token_classification.h"
#include "mtl/config/config_node.h"
#include "mtl/core/error.h"
#include "test_util.h"

namespace {

mtl::LabelInfo tags_label() {
  return {"ner", mtl::LabelKind::kTokenClass, 3, {"O", "B-PER", "I-PER"}};
}

mtl::Head make_head(const std::string& yaml, int64_t in_features) {
  return mtl_test::make_head(yaml, in_features, tags_label());
}

mtl::LossFn make_loss(const std::string& yaml) { return mtl_test::make_loss(yaml, tags_label()); }

}  // namespace

TEST(TokenClassificationHead, RegistryEntry) {
  const mtl::HeadEntry& entry = mtl::head_registry().get("token_classification");
  EXPECT_EQ(entry.label_kind, mtl::LabelKind::kTokenClass);
  EXPECT_EQ(entry.default_loss, "token_cross_entropy");
}

TEST(TokenClassificationHead, MapsEveryTokenToTagLogits) {
  for (const char* yaml : {"token_classification", "{type: token_classification, hidden: [7], dropout: 0.2}"}) {
    mtl::Head h = make_head(yaml, 5);
    EXPECT_TRUE(h->token_level());
    at::Tensor x = torch::randn({4, 6, 5});
    at::Tensor y = h->forward(x);
    EXPECT_EQ(y.sizes(), (std::vector<int64_t>{4, 6, 3}));
    at::Tensor pred = h->predict(y);
    EXPECT_EQ(pred.sizes(), (std::vector<int64_t>{4, 6}));
    EXPECT_TRUE(torch::equal(pred, y.argmax(2)));
  }
  // Position-wise: the logits of one token depend on that token's features only.
  mtl::Head h = make_head("{type: token_classification, hidden: [7]}", 5);
  h->eval();
  at::Tensor x = torch::randn({2, 3, 5});
  at::Tensor y = h->forward(x);
  EXPECT_TRUE(torch::allclose(y[1][2], h->forward(x[1][2].view({1, 1, 5}))[0][0]));
}

TEST(TokenClassificationHead, RejectsAWrongTagCount) {
  EXPECT_THROW(make_head("{type: token_classification, num_tags: 4}", 5), mtl::Error);
  EXPECT_NO_THROW(make_head("{type: token_classification, num_tags: 3}", 5));
}

// l_i = mean over example i's tagged tokens of -log softmax(logits)[tag]; loss = mean over examples, an
// example without tags counting 0.
TEST(TokenCrossEntropy, PerExampleMeanOverTaggedTokens) {
  torch::manual_seed(5);
  at::Tensor logits = torch::randn({3, 4, 3}, torch::kDouble);
  const int64_t I = mtl::kIgnoreIndex;
  at::Tensor tags = torch::tensor(std::vector<int64_t>{I, 1, 2, 0, I, 0, I, I, I, I, I, I}, torch::kLong).view({3, 4});
  at::Tensor lp = torch::log_softmax(logits, 2);
  double l0 = -(lp[0][1][1] + lp[0][2][2] + lp[0][3][0]).item<double>() / 3;
  double l1 = -lp[1][1][0].item<double>();
  double want = (l0 + l1 + 0.0) / 3;
  EXPECT_NEAR(make_loss("token_cross_entropy")(logits, tags).item<double>(), want, 1e-12);
  EXPECT_NEAR(mtl::token_cross_entropy_loss(logits, tags).item<double>(), want, 1e-12);
  // Label smoothing: (1 - eps) nll - eps/C sum_c log p_c per tagged token.
  const double eps = 0.1;
  auto smooth = [&](int b, int j, int y) {
    return (1 - eps) * -lp[b][j][y].item<double>() - eps / 3 * lp[b][j].sum().item<double>();
  };
  double s0 = (smooth(0, 1, 1) + smooth(0, 2, 2) + smooth(0, 3, 0)) / 3, s1 = smooth(1, 1, 0);
  EXPECT_NEAR(make_loss("{type: token_cross_entropy, label_smoothing: 0.1}")(logits, tags).item<double>(),
              (s0 + s1) / 3, 1e-12);
  // Gradients: none flow into ignored positions.
  at::Tensor x = logits.clone().requires_grad_(true);
  mtl::token_cross_entropy_loss(x, tags).backward();
  EXPECT_EQ(x.grad()[2].abs().max().item<double>(), 0.0);
  EXPECT_EQ(x.grad()[0][0].abs().max().item<double>(), 0.0);
  EXPECT_THROW(mtl::token_cross_entropy_loss(logits, tags.slice(1, 0, 3)), c10::Error);
}
