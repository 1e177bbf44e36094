// Importing weights: name mapping, what strict and non-strict imports load and report, dtype conversion,
// and that a refused import leaves the model bitwise unchanged.
#include "mtl/io/weight_import.h"

#include <torch/torch.h>

#include "mtl/core/error.h"
#include "mtl/io/checkpoint.h"
#include "test_util.h"

namespace {

// Names as a MultiTaskModel has them: backbone.* (with BatchNorm buffers) and heads.<task>.*.
struct Tiny : torch::nn::Module {
  explicit Tiny(uint64_t seed) {
    torch::manual_seed(seed);
    backbone = register_module("backbone", torch::nn::Sequential(torch::nn::Linear(4, 3), torch::nn::BatchNorm1d(3)));
    std::vector<std::pair<std::string, std::shared_ptr<Module>>> named{{"left", torch::nn::Linear(3, 2).ptr()},
                                                                       {"right", torch::nn::Linear(3, 2).ptr()}};
    heads = register_module("heads", torch::nn::ModuleDict(named));
    // Running statistics that differ from a fresh model's, so copying them shows.
    torch::NoGradGuard no_grad;
    for (auto& kv : named_buffers()) kv.value().add_(static_cast<int64_t>(seed));
  }
  torch::nn::Sequential backbone{nullptr};
  torch::nn::ModuleDict heads{nullptr};
};

mtl::NamedTensors state(const torch::nn::Module& m) {
  mtl::NamedTensors out;
  for (const auto& kv : m.named_parameters()) out.emplace_back(kv.key(), kv.value().detach().clone());
  for (const auto& kv : m.named_buffers()) out.emplace_back(kv.key(), kv.value().detach().clone());
  return out;
}

at::Tensor get(const mtl::NamedTensors& ts, const std::string& name) {
  for (const auto& [n, t] : ts)
    if (n == name) return t;
  ADD_FAILURE() << "no tensor " << name;
  return {};
}

void set(mtl::NamedTensors& ts, const std::string& name, const at::Tensor& value) {
  for (auto& [n, t] : ts)
    if (n == name) t = value;
}

void erase(mtl::NamedTensors& ts, const std::string& name) {
  ts.erase(std::remove_if(ts.begin(), ts.end(), [&](const auto& kv) { return kv.first == name; }), ts.end());
}

// Every tensor of `m` equals `expected`'s for names under `prefix` (all when empty).
void expect_equal(const torch::nn::Module& m, const mtl::NamedTensors& expected, const std::string& prefix = "") {
  for (const auto& [name, t] : state(m))
    if (prefix.empty() || name.rfind(prefix, 0) == 0)
      EXPECT_TRUE(torch::equal(t, get(expected, name))) << name;
}

mtl::WeightImportOptions backbone_only() {
  mtl::WeightImportOptions o;
  o.load = {"backbone"};
  o.ignore = {"heads"};
  return o;
}

}  // namespace

TEST(WeightImport, NameMappingStripsAddsAndRenames) {
  mtl::NameMapping m;
  m.strip_prefixes = {"module", "model.encoder."};
  EXPECT_EQ(m.apply("module.conv1.weight"), "conv1.weight");
  EXPECT_EQ(m.apply("model.encoder.fc.bias"), "fc.bias");
  EXPECT_EQ(m.apply("modules.x"), "modules.x");  // a prefix ends at a dot
  EXPECT_EQ(m.apply("module"), "module");
  m.strip_prefixes = {"a", "a.b"};  // only the first matching one
  EXPECT_EQ(m.apply("a.b.c"), "b.c");
  m.strip_prefixes = {"encoder"};
  m.add_prefix = "backbone";  // a dot is added
  EXPECT_EQ(m.apply("encoder.layer1.0.conv1.weight"), "backbone.layer1.0.conv1.weight");
  m.add_prefix = "backbone.";
  EXPECT_EQ(m.apply("fc.weight"), "backbone.fc.weight");
  // Rename rules run after the prefixes, in order, and see the previous rule's result.
  m.rules = {{"^backbone\\.fc\\.", "heads.label."}, {"^heads\\.(\\w+)\\.", "heads.$1.0."}};
  EXPECT_EQ(m.apply("fc.weight"), "heads.label.0.weight");
  EXPECT_EQ(m.apply("encoder.bn.running_mean"), "backbone.bn.running_mean");

  EXPECT_EQ(mtl::check_rename_regex("^a\\.(\\d+)$"), "");
  EXPECT_NE(mtl::check_rename_regex("a(b"), "");
  m.rules = {{"a(b", "x"}};
  EXPECT_MTL_ERROR(m.apply("ab"), "a(b", "not a valid regular expression");
}

TEST(WeightImport, LoadsTheSelectedPrefixesOnly) {
  Tiny a(1), b(2);
  mtl::NamedTensors before = state(b);
  mtl::WeightImportReport r = mtl::import_weights(b, state(a), backbone_only(), "a.safetensors");
  expect_equal(b, state(a), "backbone.");
  expect_equal(b, before, "heads.");
  EXPECT_EQ(r.loaded.size(), 7u);  // 4 parameters, 3 buffers
  EXPECT_TRUE(r.missing.empty() && r.unexpected.empty() && r.mismatched.empty() && r.converted.empty());
  EXPECT_EQ(r.headline(), "loaded 7 tensors; 0 missing, 0 unexpected, 0 mismatched, 0 converted");

  // Without `ignore`, the file's heads are unexpected.
  mtl::WeightImportOptions o = backbone_only();
  o.ignore.clear();
  EXPECT_MTL_ERROR(mtl::import_weights(b, state(a), o, "a.safetensors"), "a.safetensors", "4 unexpected",
                   "heads.left.weight");

  // A file tensor under the loaded prefix that the model lacks (a classifier the backbone leaves out) is
  // unexpected unless an ignore prefix selects it more narrowly than `load` does.
  mtl::NamedTensors with_fc = state(a);
  with_fc.emplace_back("backbone.fc.weight", torch::zeros({10, 3}));
  EXPECT_MTL_ERROR(mtl::import_weights(b, with_fc, backbone_only(), "a.pt"), "1 unexpected (backbone.fc.weight)");
  o = backbone_only();
  o.ignore.push_back("backbone.fc");
  r = mtl::import_weights(b, with_fc, o, "a.pt");
  EXPECT_EQ(r.headline(), "loaded 7 tensors; 0 missing, 0 unexpected, 0 mismatched, 0 converted");
  o.ignore = {"heads", "backbone"};  // "backbone" is no narrower than load: backbone.fc.weight stays unexpected
  EXPECT_MTL_ERROR(mtl::import_weights(b, with_fc, o, "a.pt"), "1 unexpected (backbone.fc.weight)");
}

TEST(WeightImport, StrictNamesMissingUnexpectedAndMismatchedTensors) {
  Tiny a(1), b(2);
  mtl::NamedTensors before = state(b);
  mtl::NamedTensors src = state(a);
  erase(src, "backbone.0.bias");
  EXPECT_MTL_ERROR(mtl::import_weights(b, src, backbone_only(), "w.safetensors"), "w.safetensors", "1 missing",
                   "backbone.0.bias", "set model.init.strict: false to load the rest");

  src = state(a);
  src.emplace_back("backbone.2.weight", torch::ones({3}));
  EXPECT_MTL_ERROR(mtl::import_weights(b, src, backbone_only(), "w.safetensors"), "1 unexpected",
                   "backbone.2.weight");

  src = state(a);
  set(src, "backbone.0.weight", torch::ones({3, 5}, torch::kHalf));
  EXPECT_MTL_ERROR(mtl::import_weights(b, src, backbone_only(), "w.safetensors"), "1 mismatched",
                   "backbone.0.weight: file [3, 5] F16 vs model [3, 4] F32");

  // All three at once: still nothing is copied.
  erase(src, "backbone.0.bias");
  src.emplace_back("backbone.2.weight", torch::ones({3}));
  EXPECT_MTL_ERROR(mtl::import_weights(b, src, backbone_only(), "w.safetensors"), "1 missing", "1 unexpected",
                   "1 mismatched");
  expect_equal(b, before);
}

TEST(WeightImport, NonStrictLoadsTheRestAndReports) {
  Tiny a(1), b(2);
  mtl::NamedTensors before = state(b);
  mtl::NamedTensors src = state(a);
  erase(src, "backbone.0.bias");
  src.emplace_back("backbone.2.weight", torch::ones({3}));
  set(src, "backbone.1.weight", torch::ones({4}));
  mtl::WeightImportOptions o = backbone_only();
  o.strict = false;
  mtl::WeightImportReport r = mtl::import_weights(b, src, o, "w.safetensors");
  EXPECT_EQ(r.missing, std::vector<std::string>{"backbone.0.bias"});
  EXPECT_EQ(r.unexpected, std::vector<std::string>{"backbone.2.weight"});
  EXPECT_EQ(r.mismatched, std::vector<std::string>{"backbone.1.weight: file [4] F32 vs model [3] F32"});
  EXPECT_EQ(r.loaded.size(), 5u);
  auto now = state(b);
  for (const auto& name : {"backbone.0.bias", "backbone.1.weight"})
    EXPECT_TRUE(torch::equal(get(now, name), get(before, name))) << name << " should be left as it was";
  for (const auto& name : r.loaded) EXPECT_TRUE(torch::equal(get(now, name), get(state(a), name))) << name;
  std::string s = r.summary();
  EXPECT_NE(s.find("loaded 5 tensors; 1 missing, 1 unexpected, 1 mismatched, 0 converted\n"), std::string::npos) << s;
  EXPECT_NE(s.find("missing (left at their initial values): backbone.0.bias"), std::string::npos) << s;
  EXPECT_NE(s.find("unexpected (not loaded): backbone.2.weight"), std::string::npos) << s;
  EXPECT_NE(s.find("mismatched (not loaded): backbone.1.weight: file [4] F32 vs model [3] F32"), std::string::npos)
      << s;
}

TEST(WeightImport, SummaryShortensLongLists) {
  mtl::WeightImportReport r;
  for (int i = 0; i < 13; ++i) r.missing.push_back("t" + std::to_string(i));
  std::string s = r.summary();
  EXPECT_NE(s.find("t0, t1, t2, t3, t4, t5, t6, t7, t8, t9 and 3 more"), std::string::npos) << s;
  EXPECT_EQ(s.find("t10"), std::string::npos) << s;
}

TEST(WeightImport, ConvertsOtherFloatPrecisions) {
  Tiny a(1), b(2);
  mtl::NamedTensors src = state(a);
  set(src, "backbone.0.weight", get(src, "backbone.0.weight").to(torch::kHalf));
  set(src, "backbone.0.bias", get(src, "backbone.0.bias").to(torch::kDouble));
  set(src, "backbone.1.weight", get(src, "backbone.1.weight").to(torch::kBFloat16));
  mtl::WeightImportReport r = mtl::import_weights(b, src, backbone_only(), "w.safetensors");
  EXPECT_EQ(r.converted, (std::vector<std::string>{"backbone.0.weight: F16 -> F32", "backbone.0.bias: F64 -> F32",
                                                    "backbone.1.weight: BF16 -> F32"}));
  EXPECT_EQ(r.loaded.size(), 7u);
  auto now = state(b);
  at::Tensor rounded = get(state(a), "backbone.0.weight").to(torch::kHalf).to(torch::kFloat);
  EXPECT_TRUE(torch::equal(get(now, "backbone.0.weight"), rounded));
  EXPECT_TRUE(torch::equal(get(now, "backbone.0.bias"), get(state(a), "backbone.0.bias")));  // F64 holds F32 exactly
  EXPECT_EQ(get(now, "backbone.0.weight").scalar_type(), torch::kFloat);
}

TEST(WeightImport, RejectsIntegersIntoFloatsAndFloatsIntoIntegerBuffers) {
  Tiny a(1), b(2);
  mtl::NamedTensors before = state(b);
  mtl::NamedTensors src = state(a);
  set(src, "backbone.0.bias", torch::ones({3}, torch::kLong));
  set(src, "backbone.1.num_batches_tracked", torch::tensor(3.0f));
  mtl::WeightImportOptions o = backbone_only();
  EXPECT_MTL_ERROR(mtl::import_weights(b, src, o, "w.safetensors"), "2 mismatched",
                   "backbone.0.bias: file [3] I64 vs model [3] F32",
                   "backbone.1.num_batches_tracked: file [] F32 vs model [] I64");
  expect_equal(b, before);
  o.strict = false;
  mtl::WeightImportReport r = mtl::import_weights(b, src, o, "w.safetensors");
  EXPECT_EQ(r.mismatched.size(), 2u);
  EXPECT_EQ(r.loaded.size(), 5u);
}

TEST(WeightImport, NothingToLoadIsAnErrorEvenWhenNotStrict) {
  Tiny a(1), b(2);
  mtl::NamedTensors src;
  for (auto& [name, t] : state(a)) src.emplace_back("encoder." + name, t);
  mtl::WeightImportOptions o = backbone_only();
  o.strict = false;
  EXPECT_MTL_ERROR(mtl::import_weights(b, src, o, "w.safetensors"), "w.safetensors", "no tensor of the file matches",
                   "encoder.backbone.0.weight", "the model expects 7: backbone.0.weight", "strip_prefix");
  // With a mapping, the same file loads.
  o.mapping.strip_prefixes = {"encoder"};
  EXPECT_EQ(mtl::import_weights(b, src, o, "w.safetensors").loaded.size(), 7u);
  expect_equal(b, state(a), "backbone.");
}

TEST(WeightImport, OptionalHeadsLoadWhereTheFileHasThem) {
  Tiny a(1), b(2);
  mtl::NamedTensors before = state(b);
  mtl::NamedTensors src = state(a);
  erase(src, "heads.right.weight");
  erase(src, "heads.right.bias");
  mtl::WeightImportOptions o;
  o.load = {"backbone"};
  o.optional = {"heads"};
  mtl::WeightImportReport r = mtl::import_weights(b, src, o, "w.safetensors");
  EXPECT_EQ(r.loaded.size(), 9u);
  expect_equal(b, state(a), "heads.left.");
  expect_equal(b, before, "heads.right.");
  // A head the file has part of must be complete; a head the model lacks is unexpected.
  src.emplace_back("heads.right.weight", torch::zeros({2, 3}));
  src.emplace_back("heads.gone.weight", torch::zeros({2, 3}));
  EXPECT_MTL_ERROR(mtl::import_weights(b, src, o, "w.safetensors"), "1 missing (heads.right.bias)",
                   "1 unexpected (heads.gone.weight)");
}

TEST(WeightImport, ListedHeadsMustBeThereAndOthersAreIgnored) {
  Tiny a(1), b(2);
  mtl::NamedTensors before = state(b);
  mtl::WeightImportOptions o = backbone_only();
  o.load.push_back("heads.left");
  mtl::WeightImportReport r = mtl::import_weights(b, state(a), o, "w.safetensors");
  EXPECT_EQ(r.loaded.size(), 9u);
  EXPECT_TRUE(r.unexpected.empty());
  expect_equal(b, state(a), "heads.left.");
  expect_equal(b, before, "heads.right.");
  // Names under a listed head are never ignored, and a listed head must be in the file.
  mtl::NamedTensors src = state(a);
  src.emplace_back("heads.left.extra", torch::zeros({1}));
  EXPECT_MTL_ERROR(mtl::import_weights(b, src, o, "w.safetensors"), "1 unexpected (heads.left.extra)");
  src = state(a);
  erase(src, "heads.left.bias");
  EXPECT_MTL_ERROR(mtl::import_weights(b, src, o, "w.safetensors"), "1 missing (heads.left.bias)");
  // Prefixes are dotted: "heads.le" selects nothing.
  o.load = {"heads.le"};
  EXPECT_MTL_ERROR(mtl::import_weights(b, state(a), o, "w.safetensors"), "no tensors under 'heads.le'");
}

TEST(WeightImport, TwoFileNamesOnOneModelNameIsAnError) {
  Tiny a(1), b(2);
  mtl::NamedTensors src = state(a);
  src.emplace_back("module.backbone.0.weight", get(src, "backbone.0.weight"));
  mtl::WeightImportOptions o = backbone_only();
  o.mapping.strip_prefixes = {"module"};
  EXPECT_MTL_ERROR(mtl::import_weights(b, src, o, "w.safetensors"),
                   "'backbone.0.weight' and 'module.backbone.0.weight'",
                   "both map to 'backbone.0.weight'");
}

TEST(WeightImport, ReadsTheModelTensorsOfACheckpoint) {
  mtl_test::TempDir dir("wi_ckpt");
  Tiny a(1);
  mtl::save_checkpoint(dir.file("c.pt"), {&a, nullptr, nullptr}, {});
  mtl::NamedTensors got = mtl::read_checkpoint_model_tensors(dir.file("c.pt"));
  ASSERT_EQ(got.size(), state(a).size());
  for (const auto& [name, t] : state(a)) EXPECT_TRUE(torch::equal(get(got, name), t)) << name;
  EXPECT_MTL_ERROR(mtl::read_checkpoint_model_tensors(dir.file("none.pt")), "none.pt", "does not exist");
  mtl_test::write_file(dir.file("junk.pt"), "junk");
  EXPECT_MTL_ERROR(mtl::read_checkpoint_model_tensors(dir.file("junk.pt")), "junk.pt", "not a readable mtl checkpoint");
}
