// Split and concat rules: fused tensors split into parts and separate ones concatenated, in the file's order, with
// one-line errors naming the rule and the tensor; split then concat gives back the file's tensors bitwise.
// (Against PyTorch's fused attention weights: tests/backbones/torch_transformer_test.cpp.)
#include "mtl/io/name_mapping.h"

#include <torch/torch.h>

#include "mtl/core/error.h"
#include "test_util.h"

namespace {

std::vector<std::string> names(const mtl::MappedTensors& ts) {
  std::vector<std::string> out;
  for (const auto& t : ts) out.push_back(t.name);
  return out;
}

// A fused attention layer's tensors, as torch.nn.MultiheadAttention names them, around two other tensors.
mtl::NamedTensors fused_file() {
  torch::manual_seed(3);
  return {{"embed.weight", torch::randn({5, 4})},
          {"layers.0.in_proj_weight", torch::randn({12, 4})},
          {"layers.0.in_proj_bias", torch::randn({12})},
          {"layers.1.in_proj_weight", torch::randn({12, 4})},
          {"layers.1.in_proj_bias", torch::randn({12})},
          {"head.weight", torch::randn({2, 4})}};
}

mtl::RenameRule split_qkv() {
  return mtl::RenameRule::split("^(.*)\\.in_proj_(weight|bias)$", {"$1.q.$2", "$1.k.$2", "$1.v.$2"}, 0);
}

mtl::RenameRule concat_qkv() {
  return mtl::RenameRule::concat({"^(.*)\\.q\\.(\\w+)$", "^(.*)\\.k\\.(\\w+)$", "^(.*)\\.v\\.(\\w+)$"},
                                 "$1.in_proj_$2", 0);
}

}  // namespace

TEST(NameMapping, SplitMakesEqualPartsInPlace) {
  const mtl::NamedTensors file = fused_file();
  mtl::NameMapping m;
  m.add_prefix = "backbone";
  m.rules = {split_qkv()};
  mtl::MappedTensors got = mtl::map_tensors(file, m, "f.pt");
  ASSERT_EQ(got.size(), 14u);
  EXPECT_EQ(got[0].name, "backbone.embed.weight");
  EXPECT_EQ(got[1].name, "backbone.layers.0.q.weight");
  EXPECT_EQ(got[2].name, "backbone.layers.0.k.weight");
  EXPECT_EQ(got[3].name, "backbone.layers.0.v.weight");
  EXPECT_EQ(got[4].name, "backbone.layers.0.q.bias");
  EXPECT_EQ(got[13].name, "backbone.head.weight");
  EXPECT_EQ(got[2].origin, "layers.0.in_proj_weight (part 2 of 3)");
  // Rows 4..7 of the fused weight are the key projection, as in torch.nn.MultiheadAttention.
  EXPECT_TRUE(torch::equal(got[2].tensor, file[1].second.slice(0, 4, 8)));
  EXPECT_TRUE(torch::equal(got[6].tensor, file[2].second.slice(0, 8, 12)));
}

TEST(NameMapping, SplitWithSizesAlongAnotherDim) {
  mtl::NamedTensors file{{"w", torch::arange(12, torch::kFloat).view({2, 6})}};
  mtl::NameMapping m;
  m.rules = {mtl::RenameRule::split("^w$", {"a", "b"}, -1, {2, 4})};
  mtl::MappedTensors got = mtl::map_tensors(file, m, "f");
  ASSERT_EQ(names(got), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(torch::equal(got[0].tensor, torch::tensor({0.f, 1.f, 6.f, 7.f}).view({2, 2})));
  EXPECT_EQ(got[1].tensor.sizes(), (std::vector<int64_t>{2, 4}));
}

TEST(NameMapping, ConcatJoinsPartsInPartOrderWhereTheFirstPartWas) {
  torch::manual_seed(1);
  at::Tensor q = torch::randn({2, 3}), k = torch::randn({2, 3}), v = torch::randn({2, 3});
  // Parts out of order in the file; the concatenation still goes q, k, v, at the position of the first part found.
  mtl::NamedTensors file{{"x", torch::zeros({1})}, {"l.v.weight", v}, {"l.q.weight", q}, {"l.k.weight", k},
                         {"y", torch::zeros({1})}};
  mtl::NameMapping m;
  m.rules = {concat_qkv()};
  mtl::MappedTensors got = mtl::map_tensors(file, m, "f");
  ASSERT_EQ(names(got), (std::vector<std::string>{"x", "l.in_proj_weight", "y"}));
  EXPECT_TRUE(torch::equal(got[1].tensor, torch::cat({q, k, v}, 0)));
  EXPECT_EQ(got[1].origin, "l.q.weight + l.k.weight + l.v.weight");
}

TEST(NameMapping, SplitThenConcatRoundTripsBitwise) {
  const mtl::NamedTensors file = fused_file();
  mtl::NameMapping m;
  m.rules = {split_qkv(), concat_qkv()};
  mtl::MappedTensors got = mtl::map_tensors(file, m, "f.pt");
  ASSERT_EQ(got.size(), file.size());
  for (size_t i = 0; i < file.size(); ++i) {
    EXPECT_EQ(got[i].name, file[i].first);
    EXPECT_TRUE(torch::equal(got[i].tensor, file[i].second)) << file[i].first;
  }
  // And the other way: separate q, k, v concatenated, then split again.
  mtl::NameMapping back;
  back.rules = {split_qkv()};
  mtl::NamedTensors parts;
  for (auto& t : mtl::map_tensors(file, back, "f.pt")) parts.emplace_back(t.name, t.tensor.clone());
  mtl::NameMapping there;
  there.rules = {concat_qkv(), split_qkv()};
  mtl::MappedTensors again = mtl::map_tensors(parts, there, "g.pt");
  ASSERT_EQ(again.size(), parts.size());
  for (size_t i = 0; i < parts.size(); ++i) {
    EXPECT_EQ(again[i].name, parts[i].first);
    EXPECT_TRUE(torch::equal(again[i].tensor, parts[i].second)) << parts[i].first;
  }
}

TEST(NameMapping, RulesThatDoNotFitAreOneLineErrorsNamingTheTensor) {
  mtl::NamedTensors file{{"w", torch::zeros({10, 4})}};
  mtl::NameMapping m;
  m.rules = {mtl::RenameRule::split("^w$", {"a", "b", "c"}, 0)};
  EXPECT_MTL_ERROR(mtl::map_tensors(file, m, "f.pt"), "f.pt", "split '^w$' into 3", "'w' [10, 4]",
                   "not divisible into 3 equal parts");
  m.rules = {mtl::RenameRule::split("^w$", {"a", "b"}, 0, {3, 3})};
  EXPECT_MTL_ERROR(mtl::map_tensors(file, m, "f.pt"), "has 10 along dim 0", "sizes [3, 3] add up");
  m.rules = {mtl::RenameRule::split("^w$", {"a", "b"}, 2)};
  EXPECT_MTL_ERROR(mtl::map_tensors(file, m, "f.pt"), "'w' [10, 4] has no dim 2");

  mtl::NamedTensors parts{{"l.q.weight", torch::zeros({2, 3})}, {"l.v.weight", torch::zeros({2, 3})}};
  m.rules = {concat_qkv()};
  EXPECT_MTL_ERROR(mtl::map_tensors(parts, m, "f.pt"), "f.pt", "concat 3 parts into '$1.in_proj_$2'",
                   "'l.in_proj_weight' has no part 2", "^(.*)\\.k\\.(\\w+)$");
  parts.emplace_back("l.k.weight", torch::zeros({2, 4}));
  EXPECT_MTL_ERROR(mtl::map_tensors(parts, m, "f.pt"), "do not fit together along dim 0",
                   "l.k.weight [2, 4] Float");
  parts.back().second = torch::zeros({2, 3}, torch::kDouble);
  EXPECT_MTL_ERROR(mtl::map_tensors(parts, m, "f.pt"), "l.k.weight [2, 3] Double");
  // Two tensors that would both be part 1 of one concatenation.
  mtl::NamedTensors twice{{"l.q.weight", torch::zeros({1})}, {"l.q.weight2", torch::zeros({1})}};
  m.rules = {mtl::RenameRule::concat({"^l\\.q\\.weight2?$", "^l\\.k$"}, "l.qk", 0)};
  EXPECT_MTL_ERROR(mtl::map_tensors(twice, m, "f.pt"), "both 'l.q.weight' and 'l.q.weight2' are part 1 of 'l.qk'");
  // The name-only mapping refuses rules that need the tensors.
  EXPECT_MTL_ERROR(m.apply("l.q.weight"), "use map_tensors");
}
