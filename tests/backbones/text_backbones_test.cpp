// Text backbones (embedding_bag, text_cnn, rnn, transformer): shapes, padding invariance of pooled and
// per-token features for every pooling mode, what each pooling reads, and option errors.
#include <torch/torch.h>

#include "backbones/backbone.h"
#include "mtl/config/config_node.h"
#include "mtl/core/error.h"
#include "mtl/model/freezing.h"
#include "test_util.h"

namespace {

constexpr int64_t kVocab = 60;

mtl::DatasetSchema text_schema(int64_t max_length = 64) {
  mtl::DatasetSchema s;
  s.inputs.push_back({"text", {max_length}, mtl::InputKind::kTokens, kVocab});
  return s;
}

mtl::Backbone make(const std::string& yaml, const mtl::DatasetSchema& schema = text_schema()) {
  return mtl_test::make_backbone(yaml, schema);
}

// Token ids [B, L] with <cls> first, random pieces, right padding; row i has lengths[i] real tokens.
at::Tensor token_batch(const std::vector<int64_t>& lengths, int64_t L, uint64_t seed = 7) {
  torch::manual_seed(seed);
  const int64_t B = static_cast<int64_t>(lengths.size());
  at::Tensor ids = torch::randint(mtl::kFirstPieceId, kVocab, {B, L}, torch::kLong);
  for (int64_t b = 0; b < B; ++b) {
    ids[b][0] = mtl::kClsTokenId;
    ids[b].slice(0, lengths[b]).fill_(mtl::kPadTokenId);
  }
  return ids;
}

double max_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

// Every backbone and pooling mode under test; dropout is on (it must be off in eval mode).
const std::vector<std::string>& configs() {
  static const std::vector<std::string> c{
      "{type: embedding_bag, dim: 12}",
      "{type: embedding_bag, dim: 12, mode: sum, projection: 10}",
      "{type: embedding_bag, dim: 12, mode: max, dropout: 0.5}",
      "{type: text_cnn, dim: 12, kernel_sizes: [2, 3, 5], filters: 4, dropout: 0.5}",
      "{type: rnn, dim: 12, hidden: 6}",
      "{type: rnn, cell: gru, dim: 12, hidden: 6, layers: 2, dropout: 0.3, pooling: mean}",
      "{type: rnn, dim: 12, hidden: 6, bidirectional: false, pooling: max}",
      "{type: rnn, cell: gru, dim: 12, hidden: 6, bidirectional: false, layers: 2}",
      "{type: transformer, dim: 16, heads: 4, layers: 2, ffn_dim: 32}",
      "{type: transformer, dim: 16, heads: 2, layers: 1, ffn_dim: 24, pooling: mean, positions: sinusoidal}",
      "{type: transformer, dim: 16, heads: 4, layers: 2, ffn_dim: 32, pooling: max}",
  };
  return c;
}

bool has_tokens(const std::string& yaml) {
  return yaml.find("rnn") != std::string::npos || yaml.find("transformer") != std::string::npos;
}

}  // namespace

TEST(TextBackbones, OutputShapes) {
  const std::vector<int64_t> lengths{9, 3, 14, 1};
  at::Tensor ids = token_batch(lengths, 14);
  for (const std::string& yaml : configs()) {
    SCOPED_TRACE(yaml);
    mtl::Backbone b = make(yaml);
    EXPECT_EQ(b->has_token_features(), has_tokens(yaml));
    mtl::Features f = b->encode({{"text", ids}});
    EXPECT_EQ(f.pooled.sizes(), (std::vector<int64_t>{4, b->output_dim()}));
    EXPECT_TRUE(torch::isfinite(f.pooled).all().item<bool>());
    EXPECT_EQ(b->forward({{"text", ids}}).sizes(), f.pooled.sizes());
    if (has_tokens(yaml)) {
      ASSERT_TRUE(f.tokens.defined());
      EXPECT_EQ(f.tokens.sizes(), (std::vector<int64_t>{4, 14, b->output_dim()}));
    } else {
      EXPECT_FALSE(f.tokens.defined());
    }
  }
  EXPECT_EQ(make("{type: embedding_bag, dim: 12}")->output_dim(), 12);
  EXPECT_EQ(make("{type: embedding_bag, dim: 12, projection: 5}")->output_dim(), 5);
  EXPECT_EQ(make("{type: text_cnn, kernel_sizes: [3, 4], filters: 7}")->output_dim(), 14);
  EXPECT_EQ(make("{type: rnn, hidden: 6}")->output_dim(), 12);
  EXPECT_EQ(make("{type: rnn, hidden: 6, bidirectional: false}")->output_dim(), 6);
  EXPECT_EQ(make("{type: transformer, dim: 32, heads: 4}")->output_dim(), 32);
}

// Extra padding columns change neither the pooled features nor the per-token features at real positions;
// per-token features at padding are zero; and a row's features do not depend on the other rows.
TEST(TextBackbones, PaddingDoesNotChangeFeatures) {
  const std::vector<int64_t> lengths{9, 2, 12, 1, 5};
  at::Tensor ids = token_batch(lengths, 12);
  at::Tensor padded = at::constant_pad_nd(ids, {0, 9}, mtl::kPadTokenId);  // L = 21
  for (const std::string& yaml : configs()) {
    SCOPED_TRACE(yaml);
    mtl::Backbone b = make(yaml);
    b->eval();
    torch::NoGradGuard no_grad;
    mtl::Features a = b->encode({{"text", ids}});
    mtl::Features p = b->encode({{"text", padded}});
    EXPECT_LT(max_diff(a.pooled, p.pooled), 1e-5);
    if (has_tokens(yaml)) {
      EXPECT_LT(max_diff(a.tokens, p.tokens.narrow(1, 0, 12)), 1e-5);
      EXPECT_EQ(p.tokens.narrow(1, 12, 9).abs().max().item<double>(), 0.0);
      for (size_t r = 0; r < lengths.size(); ++r)
        if (lengths[r] < 12) EXPECT_EQ(a.tokens[r].slice(0, lengths[r]).abs().max().item<double>(), 0.0) << "row " << r;
    }
    // Row 2 alone, unpadded (its length is the batch's L) and row 1 alone, cut to its two tokens.
    mtl::Features row2 = b->encode({{"text", ids.slice(0, 2, 3)}});
    EXPECT_LT(max_diff(row2.pooled, a.pooled.slice(0, 2, 3)), 1e-5);
    mtl::Features row1 = b->encode({{"text", ids.slice(0, 1, 2).slice(1, 0, 2)}});
    EXPECT_LT(max_diff(row1.pooled, a.pooled.slice(0, 1, 2)), 1e-5);
    if (has_tokens(yaml)) EXPECT_LT(max_diff(row1.tokens, a.tokens.slice(0, 1, 2).slice(1, 0, 2)), 1e-5);
  }
}

TEST(TextBackbones, FirstPoolingReadsTheClsPosition) {
  mtl::Backbone b = make("{type: transformer, dim: 16, heads: 4, layers: 2, ffn_dim: 32, pooling: first}");
  b->eval();
  at::Tensor ids = token_batch({7, 3, 10}, 10);
  mtl::Features f = b->encode({{"text", ids}});
  EXPECT_TRUE(torch::equal(f.pooled, f.tokens.select(1, 0)));
  // Position 0 attends to the whole example: changing a later token changes the pooled features.
  at::Tensor other = ids.clone();
  other[0][5] = (other[0][5].item<int64_t>() + 1 - mtl::kFirstPieceId) % (kVocab - mtl::kFirstPieceId) +
                mtl::kFirstPieceId;
  mtl::Features g = b->encode({{"text", other}});
  EXPECT_GT(max_diff(f.pooled[0], g.pooled[0]), 1e-6);
  EXPECT_LT(max_diff(f.pooled.slice(0, 1), g.pooled.slice(0, 1)), 1e-6);
}

// last pooling: the forward direction's state at the last real token, the backward one's at the first.
TEST(TextBackbones, RnnLastPoolingIsTheFinalHiddenStates) {
  const std::vector<int64_t> lengths{6, 2, 9};
  at::Tensor ids = token_batch(lengths, 9);
  for (const char* cell : {"lstm", "gru"}) {
    mtl::Backbone b = make(std::string("{type: rnn, cell: ") + cell + ", dim: 8, hidden: 5, layers: 2}");
    b->eval();
    mtl::Features f = b->encode({{"text", ids}});
    for (size_t r = 0; r < lengths.size(); ++r) {
      at::Tensor fwd = f.tokens[r][lengths[r] - 1].slice(0, 0, 5);
      at::Tensor bwd = f.tokens[r][0].slice(0, 5, 10);
      EXPECT_LT(max_diff(f.pooled[r].slice(0, 0, 5), fwd), 1e-6) << cell << " row " << r;
      EXPECT_LT(max_diff(f.pooled[r].slice(0, 5, 10), bwd), 1e-6) << cell << " row " << r;
    }
  }
}

TEST(TextBackbones, TextCnnHandlesSequencesShorterThanTheKernel) {
  mtl::Backbone b = make("{type: text_cnn, dim: 8, kernel_sizes: [5], filters: 3}");
  b->eval();
  at::Tensor ids = token_batch({2, 1}, 2);  // L = 2 < kernel 5
  at::Tensor y = b->forward({{"text", ids}});
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 3}));
  EXPECT_TRUE(torch::isfinite(y).all().item<bool>());
  EXPECT_GE(y.min().item<float>(), 0.0f);  // ReLU
}

TEST(TextBackbones, GradientsReachEveryParameter) {
  at::Tensor ids = token_batch({5, 3, 8}, 8);
  for (const std::string& yaml : configs()) {
    SCOPED_TRACE(yaml);
    mtl::Backbone b = make(yaml);
    mtl::Features f = b->encode({{"text", ids}});
    at::Tensor loss = f.pooled.pow(2).sum();
    if (f.tokens.defined()) loss = loss + f.tokens.pow(2).sum();
    loss.backward();
    for (const auto& kv : b->named_parameters()) {
      ASSERT_TRUE(kv.value().grad().defined()) << kv.key();
      EXPECT_TRUE(torch::isfinite(kv.value().grad()).all().item<bool>()) << kv.key();
    }
    // The padding embedding never learns.
    for (const auto& kv : b->named_parameters())
      if (kv.key() == "embedding.weight") EXPECT_EQ(kv.value().grad()[mtl::kPadTokenId].abs().max().item<double>(), 0.0);
  }
}

TEST(TextBackbones, Errors) {
  mtl::DatasetSchema dense;
  dense.inputs.push_back({"features", {10}});
  for (const char* type : {"embedding_bag", "text_cnn", "rnn", "transformer"}) {
    try {
      make(std::string("{type: ") + type + "}", dense);
      ADD_FAILURE() << type << ": expected an error for a dense input";
    } catch (const mtl::Error& e) {
      EXPECT_NE(std::string(e.what()).find("token ids"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(make("{type: transformer, dim: 10, heads: 4}"), mtl::Error);
  EXPECT_THROW(make("{type: transformer, max_length: 16}"), mtl::Error);  // below the input's 64
  EXPECT_THROW(make("{type: rnn, cell: lstmm}"), mtl::Error);
  EXPECT_THROW(make("{type: rnn, pooling: first}"), mtl::Error);
  EXPECT_THROW(make("{type: text_cnn, kernel_sizes: []}"), mtl::Error);
  EXPECT_THROW(make("{type: embedding_bag, mode: median}"), mtl::Error);
  // A transformer sized for 64 tokens rejects longer batches.
  mtl::Backbone t = make("{type: transformer, dim: 8, heads: 2, layers: 1}");
  EXPECT_THROW(t->forward({{"text", token_batch({70}, 70)}}), c10::Error);
}

// Blocks for freeze.blocks and layer_lr_decay: the transformer's embeddings (with learned positions) form the
// first block; text_cnn has no block list and gets its parameterised children, containers split.
TEST(TextBackbones, BlocksForFreezingAndLayerRates) {
  auto blocks = [](mtl::Backbone b) {
    mtl::MultiTaskModel m(b, std::vector<std::string>{}, std::vector<mtl::Head>{});
    return mtl::backbone_blocks(*m);
  };
  using Blocks = std::vector<std::vector<std::string>>;
  EXPECT_EQ(blocks(make("{type: transformer, dim: 16, heads: 2, layers: 2, ffn_dim: 32, positions: learned}")),
            (Blocks{{"backbone.embedding", "backbone.position"}, {"backbone.blocks.0"}, {"backbone.blocks.1"},
                    {"backbone.final_norm"}}));
  EXPECT_EQ(blocks(make("{type: transformer, dim: 16, heads: 2, layers: 1, ffn_dim: 32, positions: sinusoidal}")),
            (Blocks{{"backbone.embedding"}, {"backbone.blocks.0"}, {"backbone.final_norm"}}));
  Blocks cnn = blocks(make("{type: text_cnn, dim: 16, filters: 8, kernel_sizes: [2, 3]}"));
  EXPECT_EQ(cnn.front(), (std::vector<std::string>{"backbone.embedding"}));
  EXPECT_EQ(cnn.at(1), (std::vector<std::string>{"backbone.convs.0"}));
  EXPECT_EQ(cnn.at(2), (std::vector<std::string>{"backbone.convs.1"}));
}
