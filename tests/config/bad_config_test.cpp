// Every kind of bad configuration gives one mtl::Error that names the file, line and column (or the
// --set flag) and the key path, with what was expected. Built through the assembler (mtl::assemble), as the CLI does.
#include "mtl/run/assembler.h"

#include "test_util.h"

namespace {

// A valid base config; each test breaks one thing.
const char* kBase = R"(data:
  type: multi_fashion
  train_size: 100
  test_size: 50
model:
  backbone: {type: lenet}
tasks:
  left:
    label: left
    metrics: [accuracy]
  right:
    label: right
weighting:
  method: ew
optimizer:
  type: sgd
  lr: 0.01
  momentum: 0.9
trainer:
  epochs: 1
  batch_size: 32
  threads: 1
)";

std::string replace(std::string s, const std::string& from, const std::string& to) {
  auto pos = s.find(from);
  EXPECT_NE(pos, std::string::npos) << "test bug: '" << from << "' not in base config";
  if (pos != std::string::npos) s.replace(pos, from.size(), to);
  return s;
}

mtl::Run build(const std::string& yaml, const std::vector<std::string>& sets = {}) {
  return mtl::assemble(mtl::Config::from_string(yaml, "bad.yaml", sets));
}

}  // namespace

TEST(BadConfig, BaseConfigIsValid) {
  mtl::Run ex = build(kBase);
  EXPECT_EQ(ex.tasks.size(), 2u);
  EXPECT_EQ(ex.config.engine.threads, 1);
}

TEST(BadConfig, MalformedYaml) {
  EXPECT_MTL_ERROR(build("trainer: {epochs: [1, 2}\n"), "bad.yaml:1:", "malformed YAML");
}

TEST(BadConfig, TopLevelNotAMap) { EXPECT_MTL_ERROR(build("- a\n- b\n"), "bad.yaml", "expected a YAML map"); }

TEST(BadConfig, MissingFile) {
  EXPECT_MTL_ERROR(mtl::Config::load("/nonexistent/x.yaml"), "/nonexistent/x.yaml", "cannot open config file");
}

TEST(BadConfig, UnknownTopLevelKey) {
  EXPECT_MTL_ERROR(build(std::string(kBase) + "trainr: {}\n"), "bad.yaml:23:1", "unknown key 'trainr'",
                   "did you mean 'trainer'");
}

TEST(BadConfig, UnknownNestedKey) {
  EXPECT_MTL_ERROR(build(replace(kBase, "  epochs: 1", "  epoch: 1")), "bad.yaml:20:3", "trainer.epoch",
                   "did you mean 'epochs'");
}

TEST(BadConfig, WrongType) {
  EXPECT_MTL_ERROR(build(replace(kBase, "batch_size: 32", "batch_size: lots")), "bad.yaml:21:15",
                   "trainer.batch_size", "expected an integer", "'lots'");
}

TEST(BadConfig, NonPositiveBatchSize) {
  EXPECT_MTL_ERROR(build(replace(kBase, "batch_size: 32", "batch_size: 0")), "bad.yaml:21:15",
                   "trainer.batch_size", "positive");
}

TEST(BadConfig, BadThreads) {
  EXPECT_MTL_ERROR(build(replace(kBase, "threads: 1", "threads: many")), "bad.yaml:22:12", "trainer.threads",
                   "'auto'");
}

TEST(BadConfig, UnknownBackbone) {
  EXPECT_MTL_ERROR(build(replace(kBase, "{type: lenet}", "{type: lenett}")), "bad.yaml:6:20",
                   "model.backbone.type", "unknown backbone 'lenett'", "did you mean 'lenet'", "mlp");
}

TEST(BadConfig, UnknownDataset) {
  EXPECT_MTL_ERROR(build(replace(kBase, "type: multi_fashion", "type: multi_fashon")), "bad.yaml:2:9", "data.type",
                   "unknown dataset", "did you mean 'multi_fashion'");
}

TEST(BadConfig, MissingData) {
  std::string yaml = kBase;
  yaml = yaml.substr(yaml.find("model:"));
  EXPECT_MTL_ERROR(build(yaml), "bad.yaml", "missing required key 'data'");
}

TEST(BadConfig, UnknownHeadType) {
  EXPECT_MTL_ERROR(build(replace(kBase, "    label: right", "    label: right\n    type: clasification")),
                   "bad.yaml:13:11", "tasks.right.type", "unknown head", "did you mean 'classification'");
}

TEST(BadConfig, UnknownMetric) {
  EXPECT_MTL_ERROR(build(replace(kBase, "[accuracy]", "[acuracy]")), "bad.yaml:10:15", "tasks.left.metrics[0]",
                   "unknown metric 'acuracy'", "did you mean 'accuracy'");
}

TEST(BadConfig, MetricDoesNotFitLabel) {
  EXPECT_MTL_ERROR(build(replace(kBase, "[accuracy]", "[mae]")), "bad.yaml:10:15", "tasks.left.metrics[0]",
                   "metric 'mae' needs real or pixel value labels");
}

TEST(BadConfig, UnknownLoss) {
  EXPECT_MTL_ERROR(build(replace(kBase, "    label: right", "    label: right\n    loss: crossentropy")),
                   "bad.yaml:13:11", "tasks.right.loss", "unknown loss 'crossentropy'", "did you mean 'cross_entropy'");
}

TEST(BadConfig, LossDoesNotFitLabel) {
  EXPECT_MTL_ERROR(build(replace(kBase, "    label: right", "    label: right\n    loss: mse")), "bad.yaml:13:11",
                   "tasks.right.loss", "loss 'mse' needs real or pixel value labels");
}

TEST(BadConfig, LossOptionOutOfRange) {
  EXPECT_MTL_ERROR(
      build(replace(kBase, "    label: right", "    label: right\n    loss: {type: cross_entropy, label_smoothing: 1.5}")),
      "bad.yaml:13:", "tasks.right.loss.label_smoothing");
}

TEST(BadConfig, UnknownLabel) {
  EXPECT_MTL_ERROR(build(replace(kBase, "label: right", "label: rihgt")), "bad.yaml:12:12", "tasks.right.label",
                   "no label field 'rihgt'", "did you mean 'right'");
}

TEST(BadConfig, NoTasks) {
  std::string yaml = replace(kBase, "tasks:\n  left:\n    label: left\n    metrics: [accuracy]\n  right:\n    label: right\n",
                             "tasks: {}\n");
  EXPECT_MTL_ERROR(build(yaml), "bad.yaml", "(tasks)", "at least one task");
}

TEST(BadConfig, UnknownWeightingMethod) {
  EXPECT_MTL_ERROR(build(replace(kBase, "method: ew", "method: eww")), "bad.yaml:14:11", "weighting.method",
                   "unknown weighting method 'eww'", "did you mean 'ew'");
}

TEST(BadConfig, UnknownOptimizer) {
  EXPECT_MTL_ERROR(build(replace(kBase, "type: sgd", "type: adamm")), "bad.yaml:16:9", "optimizer.type",
                   "unknown value 'adamm'", "did you mean 'adam'");
}

TEST(BadConfig, MomentumOutOfRange) {
  EXPECT_MTL_ERROR(build(replace(kBase, "momentum: 0.9", "momentum: 1.5")), "bad.yaml:18:13", "optimizer.momentum",
                   "[0.000000, 1.000000]");
}

TEST(BadConfig, MultistepWithoutMilestones) {
  EXPECT_MTL_ERROR(build(std::string(kBase) + "scheduler: {type: multistep}\n"), "bad.yaml:23:", "scheduler.milestones",
                   "missing required key 'milestones'");
}

TEST(BadConfig, OverrideWithoutEquals) {
  EXPECT_MTL_ERROR(build(kBase, {"trainer.epochs"}), "--set trainer.epochs", "expected key.path=value");
}

TEST(BadConfig, OverrideOfUnknownKey) {
  EXPECT_MTL_ERROR(build(kBase, {"trainer.epoch=3"}), "--set trainer.epoch", "unknown key 'epoch'",
                   "did you mean 'epochs'");
}

TEST(BadConfig, OverrideIntoScalar) {
  EXPECT_MTL_ERROR(build(kBase, {"trainer.epochs.x=3"}), "--set trainer.epochs.x", "not a map");
}

TEST(BadConfig, BadTaskName) {
  EXPECT_MTL_ERROR(build(replace(kBase, "  right:\n", "  \"ri ght\":\n")), "bad.yaml", "letters, digits");
}

TEST(BadConfig, BackboneOptionWrongShape) {
  EXPECT_MTL_ERROR(build(replace(kBase, "{type: lenet}", "{type: lenet, channels: [10]}")), "bad.yaml:6:",
                   "model.backbone.channels", "two positive channel counts");
}
