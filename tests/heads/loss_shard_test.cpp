// The property the engine relies on: every loss is a plain mean over examples, so splitting a batch
// of 5 into shards of 2 and 3 and weighting the shard losses by shard size reproduces the batch loss.
#include <torch/torch.h>

#include "heads/head.h"
#include "mtl/config/config_node.h"
#include "test_util.h"

namespace {

using mtl_test::make_loss;

void expect_shards_add_up(const mtl::LossFn& loss, const at::Tensor& output, const at::Tensor& target) {
  ASSERT_EQ(output.size(0), 5);
  const double whole = loss(output, target).item<double>();
  const double first = loss(output.slice(0, 0, 2), target.slice(0, 0, 2)).item<double>();
  const double last = loss(output.slice(0, 2, 5), target.slice(0, 2, 5)).item<double>();
  EXPECT_NEAR(whole, (2 * first + 3 * last) / 5, 1e-12);
}

}  // namespace

TEST(LossShard, CrossEntropy) {
  torch::manual_seed(1);
  mtl::LabelInfo label{"c", mtl::LabelKind::kClass, 4, {}};
  at::Tensor out = torch::randn({5, 4}, torch::kDouble);
  at::Tensor y = torch::tensor({3, 0, 1, 3, 2}, torch::kLong);
  for (const char* yaml : {"cross_entropy", "{type: cross_entropy, label_smoothing: 0.2}",
                           "{type: cross_entropy, class_weights: [0.5, 1, 2, 4]}",
                           "{type: cross_entropy, label_smoothing: 0.1, class_weights: [0.5, 1, 2, 4]}"}) {
    SCOPED_TRACE(yaml);
    expect_shards_add_up(make_loss(yaml, label), out, y);
  }
}

TEST(LossShard, BceWithLogits) {
  torch::manual_seed(2);
  mtl::LabelInfo label{"m", mtl::LabelKind::kMultiLabel, 3, {}};
  at::Tensor out = torch::randn({5, 3}, torch::kDouble);
  at::Tensor y = (torch::rand({5, 3}, torch::kDouble) > 0.5).to(torch::kDouble);
  for (const char* yaml : {"bce_with_logits", "{type: bce_with_logits, pos_weight: [1, 2.5, 0.5]}"}) {
    SCOPED_TRACE(yaml);
    expect_shards_add_up(make_loss(yaml, label), out, y);
  }
}

TEST(LossShard, Regression) {
  torch::manual_seed(3);
  for (int64_t dims : {1, 3}) {
    mtl::LabelInfo label{"r", mtl::LabelKind::kReal, dims, {}};
    at::Tensor out = dims == 1 ? torch::randn({5}, torch::kDouble) : torch::randn({5, dims}, torch::kDouble);
    at::Tensor y = 2 * torch::randn_like(out);
    for (const char* yaml : {"mse", "l1", "huber", "{type: huber, delta: 0.3}"}) {
      SCOPED_TRACE(std::string(yaml) + " dims " + std::to_string(dims));
      expect_shards_add_up(make_loss(yaml, label), out, y);
    }
  }
}

// Token tagging: rows with different numbers of tagged tokens (one with none) still add up exactly.
TEST(LossShard, TokenCrossEntropy) {
  torch::manual_seed(4);
  mtl::LabelInfo label{"ner", mtl::LabelKind::kTokenClass, 3, {"O", "B-X", "I-X"}};
  at::Tensor out = torch::randn({5, 6, 3}, torch::kDouble);
  at::Tensor y = torch::randint(0, 3, {5, 6}, torch::kLong);
  y.select(1, 0).fill_(mtl::kIgnoreIndex);           // <cls>
  y[1].slice(0, 2).fill_(mtl::kIgnoreIndex);         // a short row
  y[3].fill_(mtl::kIgnoreIndex);                     // no tags at all
  y[4][3] = mtl::kIgnoreIndex;                       // a later sub-word piece
  for (const char* yaml : {"token_cross_entropy", "{type: token_cross_entropy, label_smoothing: 0.2}"}) {
    SCOPED_TRACE(yaml);
    expect_shards_add_up(make_loss(yaml, label), out, y);
  }
}
