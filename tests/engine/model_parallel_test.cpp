// engine.model_parallel: tasks (heads on their own threads) and pipeline (backbone stages on their own threads,
// micro-batches flowing through them). Both give the serial engine's full-batch gradients (float64, 1e-10) for
// lenet, mlp and transformer backbones with 2 and 3 threads and with 2 data-parallel copies of 2 threads, with
// loss weights fixed in advance and with weights that depend on the step's losses; the stage split balances
// parameters; runs are deterministic; bad settings are one-line errors naming the key.
#include <torch/torch.h>

#include "heads/head.h"
#include "mtl/engine/pipeline_engine.h"
#include "mtl/engine/task_parallel_engine.h"
#include "mtl/run/assembler.h"
#include "mtl/run/trainer.h"
#include "test_util.h"

namespace {

// w_t = L_t / sum L: the weights need this step's full-batch losses (the engines' two-phase path).
class LossProportional : public mtl::Weighting {
 public:
  std::vector<double> loss_weights(const std::vector<double>& losses, const mtl::StepContext&) override {
    double sum = 0;
    for (double l : losses) sum += l;
    std::vector<double> w;
    for (double l : losses) w.push_back(l / sum);
    return w;
  }
};

struct ModelCase {
  mtl::MultiTaskModel model{nullptr};
  std::vector<mtl::TaskSpec> tasks;
  std::unique_ptr<mtl::Weighting> weighting;
  mtl::Batch batch;
};

// Three tasks (two read the same label with different heads and weights) on MultiFashion-shaped images.
ModelCase vision(const std::string& backbone) {
  std::string yaml = "data: {type: multi_fashion}\nmodel: {backbone: " + backbone + "}\n" +
                     "tasks:\n  left: {label: left, weight: 1.0}\n  right: {label: right, weight: 0.5}\n"
                     "  left2: {label: left, weight: 0.25, head: {hidden: [8]}}\n"
                     "trainer: {threads: 1}\n";
  mtl::Run run = mtl::assemble(mtl::Config::from_string(yaml, "m.yaml"));
  ModelCase s;
  s.model = run.model;
  s.tasks = run.tasks;
  s.weighting = std::move(run.weighting);
  torch::manual_seed(42);
  s.batch.size = 23;
  s.batch.inputs["image"] = torch::randn({23, 1, 36, 36}, torch::kDouble);
  s.batch.targets["left"] = torch::randint(0, 10, {23}, torch::kLong);
  s.batch.targets["right"] = torch::randint(0, 10, {23}, torch::kLong);
  s.model->to(at::kDouble);
  return s;
}

// A Transformer over token ids with three classification tasks; rows of different lengths.
ModelCase text() {
  mtl::DatasetSchema schema;
  schema.inputs.push_back({"text", {12}, mtl::InputKind::kTokens, 30});
  for (const char* name : {"a", "b", "c"}) schema.labels.push_back({name, mtl::LabelKind::kClass, 3, {}});
  mtl::Config cfg = mtl::Config::from_string(
      "backbone: {type: transformer, dim: 16, heads: 2, layers: 3, ffn_dim: 32, dropout: 0}\nhead: {hidden: [8]}\nw: ew\n", "t.yaml");
  mtl::ConfigNode bn = cfg.root().component("backbone");
  mtl::Backbone backbone = mtl::backbone_registry().get(bn.type())(bn, schema);
  ModelCase s;
  std::vector<mtl::Head> heads;
  std::vector<std::string> names;
  const mtl::HeadEntry& entry = mtl::head_registry().get("classification");
  std::vector<double> weights{1.0, 0.5, 2.0};
  for (size_t t = 0; t < 3; ++t) {
    const mtl::LabelInfo& label = schema.labels[t];
    heads.push_back(entry.make(cfg.root().child("head"), {backbone->output_dim(), label}));
    mtl::TaskSpec spec;
    spec.name = label.name;
    spec.head_type = "classification";
    spec.label = label;
    spec.weight = weights[t];
    spec.loss_type = entry.default_loss;
    mtl::ConfigNode ln = cfg.root().component("loss", entry.default_loss);
    spec.loss = mtl::loss_registry().get(ln.type()).make(ln, label);
    s.tasks.push_back(spec);
    names.push_back(label.name);
  }
  s.model = mtl::MultiTaskModel(backbone, names, heads);
  mtl::ConfigNode wn = cfg.root().component("w");
  s.weighting = mtl::weighting_registry().get(wn.type())(wn, {names, weights});
  torch::manual_seed(7);
  const int64_t B = 13;
  at::Tensor ids = torch::randint(mtl::kFirstPieceId, 30, {B, 12}, torch::kLong);
  for (int64_t b = 0; b < B; ++b) {
    ids[b][0] = mtl::kClsTokenId;
    ids[b].slice(0, 2 + b % 10).fill_(mtl::kPadTokenId);
  }
  s.batch.size = B;
  s.batch.inputs["text"] = ids;
  for (const char* name : {"a", "b", "c"}) s.batch.targets[name] = torch::randint(0, 3, {B}, torch::kLong);
  s.model->to(at::kDouble);
  return s;
}

std::vector<at::Tensor> grads_of(const mtl::MultiTaskModel& m) {
  std::vector<at::Tensor> out;
  for (const auto& p : m->parameters()) out.push_back(p.grad().defined() ? p.grad().clone() : at::Tensor());
  return out;
}

void clear_grads(const mtl::MultiTaskModel& m) {
  for (auto& p : m->parameters()) p.mutable_grad() = at::Tensor();
}

void expect_close(const std::vector<at::Tensor>& got, const std::vector<at::Tensor>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t k = 0; k < got.size(); ++k) {
    ASSERT_EQ(got[k].defined(), want[k].defined()) << what << " parameter " << k;
    if (!want[k].defined()) continue;
    const double scale = std::max(1e-300, want[k].norm().item<double>());
    EXPECT_LE((got[k] - want[k]).norm().item<double>() / scale, 1e-10) << what << " parameter " << k;
  }
}

using MakeEngine = std::function<std::unique_ptr<mtl::GradientEngine>(ModelCase&, mtl::Weighting&, mtl::EngineOptions)>;

// The serial engine's gradients against the model-parallel engine's, for each thread layout and both weightings.
void expect_serial_gradients(ModelCase& s, const MakeEngine& make, const std::string& name) {
  LossProportional proportional;
  for (mtl::Weighting* w : {static_cast<mtl::Weighting*>(s.weighting.get()), static_cast<mtl::Weighting*>(&proportional)}) {
    clear_grads(s.model);
    mtl::StepResult want = mtl::make_serial_engine(s.model, s.tasks, *w)->compute_gradients(s.batch, {0, 0, {}});
    const std::vector<at::Tensor> reference = grads_of(s.model);
    for (auto [threads, model_threads] : {std::pair{2, 2}, std::pair{3, 3}, std::pair{4, 2}}) {
      const std::string what = name + " threads " + std::to_string(threads) + " model_threads " +
                               std::to_string(model_threads) + (w == &proportional ? " (loss-proportional)" : "");
      mtl::EngineOptions o;
      o.threads = threads;
      o.model_threads = model_threads;
      o.micro_batches = 5;
      clear_grads(s.model);
      mtl::StepResult got = make(s, *w, o)->compute_gradients(s.batch, {0, 0, {}});
      for (size_t t = 0; t < s.tasks.size(); ++t) {
        EXPECT_NEAR(got.losses[t], want.losses[t], 1e-12) << what;
        EXPECT_NEAR(got.weights[t], want.weights[t], 1e-12) << what;
      }
      expect_close(grads_of(s.model), reference, what);
    }
  }
}

std::unique_ptr<mtl::GradientEngine> tasks_engine(ModelCase& s, mtl::Weighting& w, mtl::EngineOptions o) {
  o.model_parallel = mtl::ModelParallel::kTasks;
  return mtl::make_task_parallel_engine(s.model, s.tasks, w, o);
}

std::unique_ptr<mtl::GradientEngine> pipeline_engine(ModelCase& s, mtl::Weighting& w, mtl::EngineOptions o) {
  o.model_parallel = mtl::ModelParallel::kPipeline;
  return mtl::make_pipeline_engine(s.model, s.tasks, w, o);
}

const std::vector<std::string> kVisionBackbones{"{type: lenet, channels: [4, 6], out_features: 12}",
                                                "{type: mlp, hidden: [16, 12, 8]}"};

}  // namespace

TEST(ModelParallel, TaskParallelGradientsEqualTheSerialEngines) {
  for (const std::string& b : kVisionBackbones) {
    ModelCase s = vision(b);
    expect_serial_gradients(s, tasks_engine, "tasks " + b);
  }
  ModelCase t = text();
  expect_serial_gradients(t, tasks_engine, "tasks transformer");
}

TEST(ModelParallel, PipelineGradientsEqualTheSerialEngines) {
  for (const std::string& b : kVisionBackbones) {
    ModelCase s = vision(b);
    expect_serial_gradients(s, pipeline_engine, "pipeline " + b);
  }
  ModelCase t = text();
  expect_serial_gradients(t, pipeline_engine, "pipeline transformer");
}

TEST(ModelParallel, StagesAreSplitIntoGroupsOfAboutEqualParameters) {
  EXPECT_EQ(mtl::split_stages({1, 1, 1, 1}, 2), (std::vector<int64_t>{0, 2, 4}));
  EXPECT_EQ(mtl::split_stages({10, 1, 1, 1}, 2), (std::vector<int64_t>{0, 1, 4}));
  EXPECT_EQ(mtl::split_stages({1, 2, 3, 4, 5}, 3), (std::vector<int64_t>{0, 3, 4, 5}));
  EXPECT_EQ(mtl::split_stages({5, 5, 5}, 3), (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(mtl::split_stages({7}, 1), (std::vector<int64_t>{0, 1}));
}

TEST(ModelParallel, TrainingRunsAreDeterministicAndCloseToDataParallel) {
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  mtl_test::TempDir dir("model_parallel_runs");
  const std::string yaml = "data: {type: multi_fashion, train_size: 240, test_size: 40, cache_dir: '" + dir.file("c") +
                           "'}\nmodel: {backbone: {type: mlp, hidden: [32, 16]}}\ntasks: {left: {label: left}, "
                           "right: {label: right}}\ntrainer: {epochs: 1, batch_size: 40, threads: 2}\nbaselines: none\n";
  auto train = [&](const std::string& tag, const std::vector<std::string>& sets) {
    std::vector<std::string> all = sets;
    all.push_back("trainer.run_dir=" + dir.file(tag));
    mtl::Run run = mtl::assemble(mtl::Config::from_string(yaml, "m.yaml", all));
    EXPECT_EQ(mtl::train(run, {"", false}).steps, 6) << tag;
    return run.model;
  };
  const mtl::MultiTaskModel data_parallel = train("dp", {});
  for (const std::string& mp : {"tasks", "pipeline"}) {
    SCOPED_TRACE(mp);
    const mtl::MultiTaskModel a = train(mp + "_a", {"engine.model_parallel=" + mp});
    const mtl::MultiTaskModel b = train(mp + "_b", {"engine.model_parallel=" + mp});
    auto pb = b->named_parameters(), pd = data_parallel->named_parameters();
    for (const auto& kv : a->named_parameters()) {
      EXPECT_TRUE(torch::equal(kv.value(), pb[kv.key()])) << kv.key();  // same run, same bits
      // Another summation order than the data-parallel engine's: float32 rounding only, after 6 steps.
      EXPECT_LE((kv.value() - pd[kv.key()]).abs().max().item<double>(), 1e-4) << kv.key();
    }
  }
}

TEST(ModelParallel, BadSettingsAreOneLineErrorsNamingTheKey) {
  const std::string base = "data: {type: multi_fashion}\nmodel: {backbone: lenet}\ntasks: {left: {label: left}, "
                           "right: {label: right}}\ntrainer: {threads: 2}\n";
  auto error = [&](const std::vector<std::string>& sets) {
    try {
      mtl::assemble(mtl::Config::from_string(base, "m.yaml", sets));
    } catch (const mtl::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  auto expect = [&](const std::vector<std::string>& sets, const std::string& key, const std::string& what) {
    const std::string e = error(sets);
    EXPECT_NE(e.find(key), std::string::npos) << e;
    EXPECT_NE(e.find(what), std::string::npos) << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  };
  expect({"engine.model_parallel=tasks", "weighting.method=pcgrad"}, "engine.model_parallel",
         "supports loss-based weighting methods; 'pcgrad'");
  expect({"engine.model_parallel=pipeline", "model.backbone=resnet"}, "engine.model_parallel", "BatchNorm");
  expect({"engine.model_parallel=pipeline", "trainer.threads=4"}, "engine.model_parallel",
         "over 4 threads needs as many stages; the backbone has 3");
  expect({"engine.model_parallel=pipeline", "model.architecture=mmoe"}, "engine.model_parallel", "architecture hps");
  expect({"engine.model_parallel=tasks", "engine.model_threads=3"}, "engine.model_threads", "expected a value in [1, 2]");
  expect({"engine.model_parallel=tasks", "trainer.threads=3", "engine.model_threads=2"}, "engine.model_threads",
         "divisor of trainer.threads");
  expect({"engine.micro_batches=4"}, "engine.micro_batches", "applies to model_parallel: pipeline");
  expect({"engine.model_parallel=tensor"}, "engine.model_parallel", "tensor");
  expect({"engine.model_parallel=tasks", "engine.mode=async"}, "engine.model_parallel", "sync");
}

TEST(ModelParallel, TheSixteenHeadsConfigTrainsItsTasksOnTwoThreads) {
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  mtl_test::TempDir dir("sixteen_heads");
  mtl::Run run = mtl::assemble(mtl::Config::load(
      mtl_test::source_path("configs/multi_fashion_16_heads.yaml"),
      {"data.train_size=512", "data.test_size=128", "data.cache_dir=" + dir.file("c"), "trainer.epochs=1",
       "trainer.run_dir=" + dir.file("r"), "baselines=none"}));
  EXPECT_EQ(run.config.engine.model_parallel, mtl::ModelParallel::kTasks);
  EXPECT_EQ(run.tasks.size(), 16u);
  mtl::TrainSummary s = mtl::train(run, {"", false});
  EXPECT_EQ(s.steps, 2);
  ASSERT_EQ(s.final_eval.tasks.size(), 16u);
  for (const auto& t : s.final_eval.tasks) EXPECT_GT(s.final_eval.value(t.task, "accuracy"), 0.0) << t.task;
}
