// trainer.precision: bf16 (mtl/core/precision.h). The CPU check reads cpuinfo flags; the autocast scope is per
// thread and restores what it found; every built-in backbone trains 50 steps in bf16 with its loss within the
// documented tolerance of the float32 run from the same weights on the same batches (README, "Precision"); the
// weights, their gradients and the losses stay float32; a config run with `precision: bf16` trains with 2 threads
// and warns (and trains in float32) on a CPU without bfloat16 instructions.
#include "mtl/core/precision.h"

#include <torch/torch.h>

#include <cstdlib>
#include <thread>

#include "backbones/backbone.h"
#include "heads/head.h"
#include "mtl/config/config_node.h"
#include "mtl/engine/engine.h"
#include "mtl/engine/parallel_engine.h"
#include "mtl/run/assembler.h"
#include "mtl/run/trainer.h"
#include "mtl/weighting/weighting.h"
#include "test_util.h"

namespace {

// The tolerance the README documents: the mean training loss of each window of 10 steps (steps 1-10, ..., 41-50)
// in bf16 is within 0.1 + 0.15 x the float32 run's mean of the same window.
constexpr double kAbsTol = 0.1, kRelTol = 0.15;
constexpr size_t kWindow = 10;

struct Case {
  std::string backbone;
  mtl::DatasetSchema schema;
};

mtl::DatasetSchema image(int64_t c, int64_t h, int64_t w) {
  mtl::DatasetSchema s;
  s.inputs.push_back({"image", {c, h, w}});
  s.labels.push_back({"y", mtl::LabelKind::kClass, 4, {}});
  return s;
}

mtl::DatasetSchema text() {
  mtl::DatasetSchema s;
  s.inputs.push_back({"text", {16}, mtl::InputKind::kTokens, 50});
  s.labels.push_back({"y", mtl::LabelKind::kClass, 4, {}});
  return s;
}

mtl::DatasetSchema image_and_text() {
  mtl::DatasetSchema s = image(1, 8, 8);
  s.inputs.push_back(text().inputs[0]);
  return s;
}

// Four fixed batches of 32 rows whose label is a fixed function of the input (so the loss can fall).
std::vector<mtl::Batch> batches(const mtl::DatasetSchema& s) {
  torch::manual_seed(11);
  std::vector<mtl::Batch> out;
  for (int k = 0; k < 4; ++k) {
    mtl::Batch b;
    b.size = 32;
    at::Tensor score = torch::zeros({32});
    for (const auto& in : s.inputs) {
      if (in.kind == mtl::InputKind::kTokens) {
        at::Tensor ids = torch::randint(mtl::kFirstPieceId, in.vocab_size, {32, in.shape[0]}, torch::kLong);
        ids.select(1, 0).fill_(mtl::kClsTokenId);
        b.inputs[in.name] = ids;
        score += (ids.slice(1, 1) < in.vocab_size / 2).to(torch::kFloat).mean(1) * 4;
      } else {
        std::vector<int64_t> shape{32};
        shape.insert(shape.end(), in.shape.begin(), in.shape.end());
        at::Tensor x = torch::randn(shape);
        b.inputs[in.name] = x;
        score += x.flatten(1).slice(1, 0, x.flatten(1).size(1) / 2).mean(1) * 8 + 2;
      }
    }
    b.targets["y"] = score.floor().clamp(0, 3).to(torch::kLong);
    out.push_back(b);
  }
  return out;
}

struct Trained {
  std::vector<double> losses;
  at::ScalarType features = at::kFloat;  // dtype of the backbone's features in the forward pass
  bool float32_state = true;             // weights and gradients float32 after training
};

Trained train_50_steps(const Case& c, mtl::Precision precision) {
  mtl::Config cfg = mtl::Config::from_string("backbone: " + c.backbone + "\nhead: {hidden: [16]}\nw: ew\n", "p.yaml");
  mtl::ConfigNode bn = cfg.root().component("backbone");
  mtl::Backbone backbone = mtl::backbone_registry().get(bn.type())(bn, c.schema);
  const mtl::LabelInfo& label = *c.schema.label("y");
  const mtl::HeadEntry& entry = mtl::head_registry().get("classification");
  mtl::TaskSpec spec;
  spec.name = "y";
  spec.head_type = "classification";
  spec.label = label;
  spec.loss_type = entry.default_loss;
  mtl::ConfigNode ln = cfg.root().component("loss", entry.default_loss);
  spec.loss = mtl::loss_registry().get(ln.type()).make(ln, label);
  std::vector<mtl::TaskSpec> tasks{spec};
  mtl::MultiTaskModel model(backbone, std::vector<std::string>{"y"},
                            std::vector<mtl::Head>{entry.make(cfg.root().child("head"), {backbone->output_dim(), label})});
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(3);
  model->architecture().reset_parameters(gen);
  mtl::ConfigNode wn = cfg.root().component("w");
  auto weighting = mtl::weighting_registry().get(wn.type())(wn, {{"y"}, {1.0}});
  mtl::EngineOptions options;
  options.precision = precision;
  auto engine = mtl::make_parallel_engine(model, tasks, *weighting, options);
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.02));
  const std::vector<mtl::Batch> data = batches(c.schema);
  Trained out;
  {
    mtl::PrecisionScope scope(precision);
    torch::NoGradGuard no_grad;
    out.features = backbone->forward(data[0].inputs).scalar_type();
  }
  for (int64_t step = 0; step < 50; ++step) {
    mtl::StepResult r = engine->compute_gradients(data[step % 4], mtl::StepContext{step, 0, {}});
    sgd.step();
    out.losses.push_back(r.losses[0]);
  }
  for (const auto& p : model->parameters())
    out.float32_state &= p.scalar_type() == at::kFloat && (!p.grad().defined() || p.grad().scalar_type() == at::kFloat);
  return out;
}

}  // namespace

TEST(Precision, Bf16SupportIsReadFromTheCpuFlags) {
  mtl_test::TempDir dir("cpuinfo");
  mtl_test::write_file(dir.file("yes"), "processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16 amx_tile\n\n"
                                        "processor\t: 1\nflags\t\t: fpu sse2 avx512f avx512_bf16 amx_tile\n");
  mtl_test::write_file(dir.file("amx"), "flags\t: fpu avx512f amx_bf16\n");
  mtl_test::write_file(dir.file("no"), "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16x\n");
  EXPECT_TRUE(mtl::cpu_has_bf16(dir.file("yes")));
  EXPECT_TRUE(mtl::cpu_has_bf16(dir.file("amx")));
  EXPECT_FALSE(mtl::cpu_has_bf16(dir.file("no")));
  EXPECT_FALSE(mtl::cpu_has_bf16(dir.file("missing")));
  setenv("MTL_CPUINFO", dir.file("no").c_str(), 1);
  EXPECT_FALSE(mtl::cpu_has_bf16());
  unsetenv("MTL_CPUINFO");
}

TEST(Precision, TheScopeAutocastsItsOwnThreadAndRestores) {
  torch::nn::Linear lin(8, 4);
  at::Tensor x = torch::randn({2, 8});
  EXPECT_EQ(lin(x).scalar_type(), at::kFloat);
  {
    mtl::PrecisionScope outer(mtl::Precision::kBFloat16);
    EXPECT_EQ(lin(x).scalar_type(), at::kBFloat16);
    std::thread other([&] { EXPECT_EQ(lin(x).scalar_type(), at::kFloat); });  // autocast is per thread
    other.join();
    {
      mtl::PrecisionScope inner(mtl::Precision::kFloat32);  // a float32 scope changes nothing
      EXPECT_EQ(lin(x).scalar_type(), at::kBFloat16);
    }
    EXPECT_EQ(lin(x).scalar_type(), at::kBFloat16);
  }
  EXPECT_EQ(lin(x).scalar_type(), at::kFloat);
}

TEST(Precision, EveryBackboneTrainsInBf16WithinTheToleranceOfFloat32) {
  const std::vector<Case> cases{
      {"{type: mlp, hidden: [32, 16]}", image(1, 8, 8)},
      {"{type: lenet, channels: [4, 8], out_features: 16}", image(1, 28, 28)},
      {"{type: resnet, channels: [4, 8], blocks: 1}", image(1, 12, 12)},
      {"{type: resnet18}", image(3, 16, 16)},
      {"{type: vit_b_16, patch_size: 4, hidden_dim: 32, layers: 2, heads: 2, mlp_dim: 64}", image(3, 16, 16)},
      {"{type: embedding_bag, dim: 16}", text()},
      {"{type: text_cnn, dim: 16, kernel_sizes: [2, 3], filters: 8}", text()},
      {"{type: rnn, dim: 16, hidden: 8}", text()},
      {"{type: transformer, dim: 32, heads: 2, layers: 2, ffn_dim: 64}", text()},
      {"{type: multimodal, dim: 16, stems: {image: {type: mlp, hidden: [16]}, text: {type: embedding_bag, dim: 8}}}",
       image_and_text()},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.backbone);
    const Trained f32 = train_50_steps(c, mtl::Precision::kFloat32);
    const Trained bf16 = train_50_steps(c, mtl::Precision::kBFloat16);
    auto mean = [](const std::vector<double>& v, size_t from, size_t to) {
      double s = 0;
      for (size_t i = from; i < to; ++i) s += v[i];
      return s / double(to - from);
    };
    double worst = 0.0;
    for (size_t w = 0; w + kWindow <= f32.losses.size(); w += kWindow) {
      const double a = mean(f32.losses, w, w + kWindow), b = mean(bf16.losses, w, w + kWindow);
      const double allowed = kAbsTol + kRelTol * a;
      EXPECT_LE(std::abs(b - a), allowed) << "steps " << w + 1 << "-" << w + kWindow;
      worst = std::max(worst, std::abs(b - a) / allowed);
    }
    EXPECT_LT(mean(f32.losses, 40, 50), mean(f32.losses, 0, 10));  // the data is learnable ...
    EXPECT_LT(mean(bf16.losses, 40, 50), mean(bf16.losses, 0, 10));  // ... in bf16 too
    EXPECT_EQ(f32.features, at::kFloat);
    EXPECT_TRUE(bf16.float32_state);
    std::cout << c.backbone << ": features " << c10::toString(bf16.features) << ", loss after 50 steps "
              << f32.losses.back() << " (float32) " << bf16.losses.back() << " (bf16), worst window at "
              << worst << " of the tolerance\n";
  }
}

TEST(Precision, ABf16ConfigTrainsWithTwoThreadsAndWarnsWithoutTheInstructions) {
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  mtl_test::TempDir dir("bf16_run");
  const std::string yaml = "data: {type: multi_fashion, train_size: 200, test_size: 50, cache_dir: '" +
                           dir.file("c") + "'}\nmodel: {backbone: lenet}\ntasks: {left: {label: left}, right: "
                           "{label: right}}\ntrainer: {epochs: 1, batch_size: 50, threads: 2, precision: bf16}\n"
                           "baselines: none\n";
  mtl::Run run = mtl::assemble(mtl::Config::from_string(yaml, "b.yaml", {"trainer.run_dir=" + dir.file("r")}));
  EXPECT_EQ(run.config.engine.precision, mtl::cpu_has_bf16() ? mtl::Precision::kBFloat16 : mtl::Precision::kFloat32);
  mtl::TrainSummary s = mtl::train(run, {"", false});
  EXPECT_EQ(s.steps, 4);
  for (const auto& p : run.model->parameters()) EXPECT_EQ(p.scalar_type(), at::kFloat);
  EXPECT_GT(s.final_eval.tasks.size(), 0u);

  mtl_test::write_file(dir.file("cpuinfo"), "flags\t: fpu sse2 avx2\n");
  setenv("MTL_CPUINFO", dir.file("cpuinfo").c_str(), 1);
  mtl::Run plain = mtl::assemble(mtl::Config::from_string(yaml, "b.yaml", {"trainer.run_dir=" + dir.file("w")}));
  unsetenv("MTL_CPUINFO");
  EXPECT_EQ(plain.config.engine.precision, mtl::Precision::kFloat32);
  EXPECT_NE(plain.config.trainer.precision_warning.find("b.yaml:"), std::string::npos);
  EXPECT_NE(plain.config.trainer.precision_warning.find("no bfloat16 instructions"), std::string::npos);

  EXPECT_MTL_ERROR(mtl::assemble(mtl::Config::from_string(yaml, "b.yaml", {"trainer.precision=fp16"})),
                   "trainer.precision", "fp16");
}
