// model.init.preset torch_transformer_encoder: torch.nn.TransformerEncoder weights (pre-LN and post-LN, relu, a
// padding mask) loaded into mtl's transformer give PyTorch's token features to 1e-5
// (tests/backbones/torch_transformer_reference.py writes the weights and PyTorch's outputs).
#include <torch/torch.h>

#include <filesystem>

#include "backbones/transformer.h"
#include "mtl/io/safetensors.h"
#include "mtl/io/torch_state_dict.h"
#include "mtl/io/weight_import.h"
#include "test_util.h"

namespace {

const char* kPython = "/usr/bin/python3";

at::Tensor find(const mtl::NamedTensors& ts, const std::string& name) {
  for (const auto& [n, t] : ts)
    if (n == name) return t;
  ADD_FAILURE() << "no tensor " << name;
  return {};
}

// `file` (default encoder_<name>.pt) loaded with `rules` before the preset's.
void check(const std::string& dir, const std::string& name, bool norm_first, std::vector<mtl::RenameRule> rules = {},
           const std::string& file = "") {
  SCOPED_TRACE(name + " " + file);
  // The script's sizes: vocabulary 50, dim 16, 4 heads, ffn 24, 2 layers, 7 positions.
  mtl::TransformerImpl model(mtl::TransformerOptions("text", 50)
                                 .dim(16)
                                 .heads(4)
                                 .ffn_dim(24)
                                 .layers(2)
                                 .max_length(7)
                                 .dropout(0.1)
                                 .norm_first(norm_first)
                                 .activation("relu")
                                 .final_norm(norm_first));
  mtl::WeightImportOptions o;
  o.mapping.rules = std::move(rules);
  for (auto& r : mtl::torch_transformer_encoder_rules("")) o.mapping.rules.push_back(std::move(r));
  o.load = {"embedding", "position", "blocks"};
  if (norm_first) o.load.push_back("final_norm");
  const std::string pt = dir + "/" + (file.empty() ? "encoder_" + name + ".pt" : file);
  mtl::WeightImportReport r = mtl::import_weights(model, mtl::read_torch_state_dict(pt), o, pt);
  EXPECT_EQ(r.loaded.size(), norm_first ? 28u : 26u) << r.summary();

  const mtl::NamedTensors io = mtl::read_safetensors(dir + "/encoder_" + name + "_io.safetensors").tensors;
  const at::Tensor ids = find(io, "ids"), want = find(io, "tokens");
  model.eval();
  torch::NoGradGuard no_grad;
  at::Tensor got = model.encode({{"text", ids}}).tokens;
  ASSERT_EQ(got.sizes(), want.sizes());
  at::Tensor real = ids.ne(0).unsqueeze(2).expand_as(want);  // PyTorch's outputs at padding are not defined
  const double err = (got - want).abs().masked_select(real).max().item<double>();
  EXPECT_LT(err, 1e-5) << "max |difference| at real tokens " << err;
  EXPECT_EQ(got.masked_select(real.logical_not()).abs().max().item<double>(), 0.0);  // mtl's: zeros
}

}  // namespace

TEST(TorchTransformerPreset, PreAndPostLayerNormMatchPyTorch) {
  if (mtl_test::run_shell(std::string(kPython) + " -c 'import torch, numpy'").code != 0)
    GTEST_SKIP() << kPython << " cannot import torch and numpy (install python3-torch)";
  mtl_test::TempDir dir("torch_transformer");
  mtl_test::ShellRun r = mtl_test::run_shell(std::string(kPython) + " " +
                                             mtl_test::source_path("tests/backbones/torch_transformer_reference.py") +
                                             " " + dir.path());
  ASSERT_EQ(r.code, 0) << r.out;
  check(dir.path(), "pre", true);
  check(dir.path(), "post", false);
  // Separate q/k/v projections concatenated into the fused layout; and the fused file split and joined again.
  const std::vector<std::string> parts = {"^(.*)\\.q_proj\\.(weight|bias)$", "^(.*)\\.k_proj\\.(weight|bias)$",
                                          "^(.*)\\.v_proj\\.(weight|bias)$"};
  check(dir.path(), "post", false, {mtl::RenameRule::concat(parts, "$1.in_proj_$2", 0)}, "encoder_post_qkv.pt");
  check(dir.path(), "post", false,
        {mtl::RenameRule::split("^(.*)\\.in_proj_(weight|bias)$", {"$1.q_proj.$2", "$1.k_proj.$2", "$1.v_proj.$2"}, 0),
         mtl::RenameRule::concat(parts, "$1.in_proj_$2", 0)});
}

TEST(TorchTransformerPreset, RulesMapTorchNamesOntoTheBackbone) {
  mtl::NameMapping m;
  m.rules = mtl::torch_transformer_encoder_rules("backbone.");
  EXPECT_EQ(m.apply("layers.0.self_attn.in_proj_weight"), "backbone.blocks.0.qkv.weight");
  EXPECT_EQ(m.apply("model.encoder.layers.11.self_attn.out_proj.bias"), "backbone.blocks.11.proj.bias");
  EXPECT_EQ(m.apply("encoder.layers.2.linear1.weight"), "backbone.blocks.2.ffn1.weight");
  EXPECT_EQ(m.apply("encoder.layers.2.linear2.bias"), "backbone.blocks.2.ffn2.bias");
  EXPECT_EQ(m.apply("encoder.layers.3.norm2.weight"), "backbone.blocks.3.norm2.weight");
  EXPECT_EQ(m.apply("encoder.norm.bias"), "backbone.final_norm.bias");
  EXPECT_EQ(m.apply("norm.weight"), "backbone.final_norm.weight");
  EXPECT_EQ(m.apply("embedding.weight"), "embedding.weight");  // not the encoder's: left alone
}

TEST(TorchTransformerPreset, WithoutAFinalNormTheLastBlockStagePools) {
  mtl::TransformerImpl model(
      mtl::TransformerOptions("text", 20).dim(8).heads(2).layers(3).ffn_dim(8).max_length(6).final_norm(false));
  EXPECT_EQ(model.num_stages(), 4);  // embeddings + 3 blocks, the last pooling
  EXPECT_EQ(model.block_names().size(), 4u);
  EXPECT_FALSE(model.named_parameters().contains("final_norm.weight"));
  model.eval();
  torch::NoGradGuard no_grad;
  at::Tensor ids = torch::tensor({3, 4, 5, 0, 0, 0, 7, 8, 9, 10, 11, 12}, torch::kLong).view({2, 6});
  at::Tensor y;
  for (int64_t i = 0; i < model.num_stages(); ++i) y = model.stage(i, {{"text", ids}}, y);
  EXPECT_TRUE(torch::allclose(y, model.forward({{"text", ids}})));
}
