// mtl as a C++ library: a two-task model, a weighting method and an engine built from C++ options alone (no
// YAML), trained on MultiFashion; and the assembler's initial weights depend only on the run's seed.
#include <torch/torch.h>

#include "mtl/core/random.h"
#include "mtl/core/weight_init.h"
#include "mtl/mtl.h"  // the README example needs nothing else
#include "test_util.h"

namespace {

double mean_accuracy(const mtl::EvalResult& r) {
  return (r.value("left", "accuracy") + r.value("right", "accuracy")) / 2;
}

}  // namespace

// The README's "Using mtl as a C++ library" example, checked: PLAIN_CPP_EXAMPLE_BEGIN .. _END is copied there.
TEST(PlainCpp, TrainsATwoTaskModelWithoutYaml) {
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  mtl_test::TempDir dir("plain_cpp");
  // PLAIN_CPP_EXAMPLE_BEGIN
  mtl::MultiFashionOptions data;  // two Fashion-MNIST items per 36x36 image: labels "left" and "right"
  data.train_size = 6000;
  data.test_size = 2000;
  data.cache_dir = dir.file("cache");
  auto source = std::make_shared<mtl::MultiFashionSource>(data);
  auto train = source->open(mtl::Split::kTrain), test = source->open(mtl::Split::kTest);

  auto trunk = std::make_shared<mtl::LeNetBackboneImpl>(mtl::LeNetBackboneOptions("image", {1, 36, 36}));
  std::vector<mtl::Head> heads;
  std::vector<mtl::TaskSpec> tasks;
  for (std::string name : {"left", "right"}) {
    heads.push_back(std::make_shared<mtl::ClassificationHeadImpl>(mtl::ClassificationHeadOptions(trunk->output_dim(), 10)));
    mtl::TaskSpec task;
    task.name = name;
    task.label = *source->schema().label(name);
    task.loss = mtl::CrossEntropyLoss(mtl::CrossEntropyLossOptions());
    task.make_metrics = [] {
      std::vector<std::unique_ptr<mtl::Metric>> m;
      m.push_back(std::make_unique<mtl::Accuracy>(mtl::AccuracyOptions(mtl::LabelKind::kClass)));
      return m;
    };
    tasks.push_back(task);
  }
  mtl::MultiTaskModel model(mtl::Backbone(trunk), std::vector<std::string>{"left", "right"}, heads);
  mtl::PcGrad weighting(mtl::PcGradOptions().order("fixed"));

  mtl::OptimizerOptions sgd;
  sgd.lr = 0.05;
  sgd.momentum = 0.9;
  mtl::NamedParameters named;
  for (const auto& kv : model->named_parameters()) named.emplace_back(kv.key(), kv.value());
  mtl::ParamGroups groups(sgd, mtl::SchedulerOptions{}, named, {});
  const int64_t batch_size = 64, steps_per_epoch = mtl::batches_per_epoch(train->size(), batch_size, false);
  groups.set_horizon(steps_per_epoch, 2 * steps_per_epoch);
  auto engine = mtl::make_sync_engine(model, tasks, weighting, groups, mtl::EngineOptions{/*threads=*/2});

  model->train();
  int64_t step = 0;
  for (int64_t epoch = 0; epoch < 2; ++epoch)
    for (const auto& indices : mtl::make_batches(mtl::epoch_permutation(train->size(), 0, epoch), batch_size, false))
      engine->step(train->batch(indices), mtl::StepContext{step++, epoch, {}});
  mtl::EvalResult result = mtl::evaluate(model, tasks, *test, 1000);
  // PLAIN_CPP_EXAMPLE_END
  std::cout << mtl::format_eval_table(result);
  EXPECT_GT(mean_accuracy(result), 0.45);  // chance is 0.1
  EXPECT_EQ(step, 2 * steps_per_epoch);
}

// The assembler's initial weights come from generators the run owns: assembling the same config twice in one
// process gives bitwise equal weights whatever the global generator holds (it is never seeded by mtl); another
// seed gives other weights.
TEST(PlainCpp, AssemblingTwiceGivesTheSameWeightsWithoutTouchingTheGlobalGenerator) {
  auto config = [](int seed) {
    return mtl::Config::from_string("data: {type: multi_fashion}\nmodel: {backbone: lenet}\n"
                                    "tasks: {left: {label: left, head: {hidden: [16]}}, right: {label: right}}\n"
                                    "trainer: {seed: " + std::to_string(seed) + "}\n",
                                    "twice.yaml");
  };
  torch::manual_seed(123);
  mtl::Run a = mtl::assemble(config(7));
  torch::manual_seed(999);  // a different global state must not matter
  mtl::Run b = mtl::assemble(config(7));
  mtl::Run c = mtl::assemble(config(8));
  auto pa = a.model->named_parameters(), pb = b.model->named_parameters(), pc = c.model->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  bool any_differs = false;
  for (const auto& kv : pa) {
    EXPECT_TRUE(kv.value().equal(pb[kv.key()])) << kv.key();
    any_differs = any_differs || !kv.value().equal(pc[kv.key()]);
  }
  EXPECT_TRUE(any_differs) << "seed 8 gave the weights of seed 7";
  // A replica from the factory starts from the same weights as the model.
  mtl::MultiTaskModel replica = a.make_model();
  for (const auto& kv : replica->named_parameters()) EXPECT_TRUE(kv.value().equal(pa[kv.key()])) << kv.key();
}

// A module type without an initialisation rule is an error rather than weights silently drawn from the global
// generator (every built-in backbone and head is assembled by the config tests, which would fail here).
TEST(PlainCpp, ModuleWithoutAnInitialisationRuleIsAnError) {
  at::Generator gen = mtl::make_generator(0, 0, 0);
  torch::nn::Sequential unknown{torch::nn::PReLU()};
  EXPECT_MTL_ERROR(mtl::reset_module_parameters(*unknown, gen), "PReLU", "no initialisation rule");
}

// The README's "Using mtl as a C++ library" shows the example above, line for line (so it cannot rot).
TEST(PlainCpp, ReadmeShowsTheExampleOfThisTest) {
  std::string test = mtl_test::read_file(mtl_test::source_path("tests/run/plain_cpp_test.cpp"));
  std::string readme = mtl_test::read_file(mtl_test::source_path("README.md"));
  const std::string begin = "// PLAIN_CPP_EXAMPLE_BEGIN\n", end = "  // PLAIN_CPP_EXAMPLE_END";
  size_t a = test.find(begin) + begin.size(), b = test.find(end);
  ASSERT_LT(a, b);
  std::istringstream lines(test.substr(a, b - a));
  int checked = 0;
  for (std::string line; std::getline(lines, line);) {
    line = line.substr(std::min(line.size(), line.find_first_not_of(' ')));
    if (line.find("cache_dir") != std::string::npos) line = "data.cache_dir = \"cache\";";
    EXPECT_NE(readme.find(line), std::string::npos) << "README lacks: " << line;
    ++checked;
  }
  EXPECT_GT(checked, 20);
}
