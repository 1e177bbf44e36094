// The mtl CLI: exit codes and one-line errors for bad input, inspect output, baselines and delta-m, export.
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "mtl/run/assembler.h"
#include "mtl/io/checkpoint.h"
#include "mtl/io/safetensors.h"
#include "mtl/io/torch_state_dict.h"
#include "test_util.h"

namespace {
using CliResult = mtl_test::ShellRun;  // out: stdout + stderr
CliResult run_cli(const std::string& args) { return mtl_test::run_shell(std::string(MTL_BINARY_DIR) + "/mtl " + args); }
size_t lines(const std::string& s) { return std::count(s.begin(), s.end(), '\n'); }
}  // namespace

TEST(Cli, HelpAndSubcommandHelp) {
  if (!std::filesystem::exists(std::string(MTL_BINARY_DIR) + "/mtl")) GTEST_SKIP() << "CLI not built";
  CliResult r = run_cli("--help");
  EXPECT_EQ(r.code, 0);
  for (auto s : {"train", "eval", "predict", "inspect", "baselines", "export"}) EXPECT_NE(r.out.find(s), std::string::npos) << s;
  EXPECT_EQ(run_cli("train --help").code, 0);
  EXPECT_NE(run_cli("predict --help").out.find("--output"), std::string::npos);
}

TEST(Cli, BadInputGivesOneLineAndExitCode2) {
  if (!std::filesystem::exists(std::string(MTL_BINARY_DIR) + "/mtl")) GTEST_SKIP() << "CLI not built";
  mtl_test::TempDir dir("cli");
  CliResult missing = run_cli("train " + dir.file("nope.yaml"));
  EXPECT_EQ(missing.code, 2);
  EXPECT_EQ(lines(missing.out), 1u) << missing.out;
  EXPECT_NE(missing.out.find("nope.yaml: cannot open config file"), std::string::npos) << missing.out;

  mtl_test::write_file(dir.file("bad.yaml"), "data: {type: multi_fashion}\nmodel: {backbone: lenett}\ntasks: {left: {}}\n");
  CliResult bad = run_cli("inspect " + dir.file("bad.yaml"));
  EXPECT_EQ(bad.code, 2);
  EXPECT_EQ(lines(bad.out), 1u) << bad.out;
  EXPECT_NE(bad.out.find("bad.yaml:2:19 (model.backbone.type): unknown backbone 'lenett'"), std::string::npos) << bad.out;

  CliResult badset = run_cli("inspect " + mtl_test::source_path("configs/multi_fashion.yaml") + " --set trainer.epochs=-1");
  EXPECT_EQ(badset.code, 2);
  EXPECT_NE(badset.out.find("--set trainer.epochs"), std::string::npos) << badset.out;

  CliResult badflag = run_cli("train --no-such-flag");
  EXPECT_EQ(badflag.code, 2);

  mtl_test::write_file(dir.file("ckpt.pt"), "garbage");
  CliResult badckpt = run_cli("eval " + mtl_test::source_path("configs/multi_fashion.yaml") + " --checkpoint " + dir.file("ckpt.pt"));
  EXPECT_EQ(badckpt.code, 2);
  EXPECT_EQ(lines(badckpt.out), 1u) << badckpt.out;
  EXPECT_NE(badckpt.out.find("not a readable mtl checkpoint"), std::string::npos) << badckpt.out;
}

TEST(Cli, InspectShowsSharedAndTaskParameters) {
  if (!std::filesystem::exists(std::string(MTL_BINARY_DIR) + "/mtl")) GTEST_SKIP() << "CLI not built";
  CliResult r = run_cli("inspect " + mtl_test::source_path("configs/multi_fashion.yaml"));
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("30890 shared"), std::string::npos) << r.out;  // MultiLeNet trunk
  EXPECT_NE(r.out.find("input image: [1, 36, 36] per example"), std::string::npos) << r.out;
  // Preprocessing for pretrained weights changes what the model is built for.
  CliResult rgb = run_cli("inspect " + mtl_test::source_path("configs/multi_fashion.yaml") +
                          " --set data.channels=3 --set data.resize=[40,48] --set data.normalize=imagenet");
  EXPECT_EQ(rgb.code, 0) << rgb.out;
  EXPECT_NE(rgb.out.find("input image: [3, 40, 48] per example"), std::string::npos) << rgb.out;
  EXPECT_NE(rgb.out.find("Conv2d(3, 10"), std::string::npos) << rgb.out;
  EXPECT_NE(r.out.find("task left"), std::string::npos);
  EXPECT_NE(r.out.find("task right"), std::string::npos);
}

TEST(Cli, InspectShowsFrozenParametersAndGroupRates) {
  if (!std::filesystem::exists(std::string(MTL_BINARY_DIR) + "/mtl")) GTEST_SKIP() << "CLI not built";
  CliResult r = run_cli("inspect " + mtl_test::source_path("configs/multi_fashion.yaml") +
                        " --set 'freeze={blocks: 1, schedule: [{epoch: 2}]}' --set optimizer.backbone_lr_scale=0.1" +
                        " --set 'optimizer.groups=[{name: lefthead, params: [heads.left], lr: 0.05, max_norm: 2}]'");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("1=backbone.conv1 2=backbone.conv2 3=backbone.fc"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("frozen from epoch 1: 820 parameters (2 tensors: backbone.conv1.weight, backbone.conv1.bias)"),
            std::string::npos) << r.out;  // conv 1->10, 9x9: 810 + 10
  EXPECT_NE(r.out.find("frozen from epoch 2: 0 parameters"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("lefthead             lr 0.05"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("max_norm 2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("backbone             lr 0.001 "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("default              lr 0.01 "), std::string::npos) << r.out;
}

TEST(Cli, BaselinesThenTrainAndEvalReportDeltaM) {
  if (!std::filesystem::exists(std::string(MTL_BINARY_DIR) + "/mtl")) GTEST_SKIP() << "CLI not built";
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  mtl_test::TempDir dir("cli_baselines");
  const std::string cfg = dir.file("tiny.yaml");
  mtl_test::write_file(cfg, "data: {type: multi_fashion, train_size: 150, test_size: 100, cache_dir: '" +
                                dir.file("cache") + "'}\nmodel: {backbone: lenet}\n"
                                "tasks: {left: {label: left, metrics: [accuracy, macro_f1]}, right: {label: right}}\n"
                                "optimizer: {type: sgd, lr: 0.02, momentum: 0.9}\n"
                                "trainer: {epochs: 1, batch_size: 50, threads: 1, seed: 1, run_dir: '" +
                                dir.file("run") + "'}\n");
  const std::string file = dir.file("run.baselines/baselines.json");

  CliResult b = run_cli("baselines " + cfg + " -q");
  ASSERT_EQ(b.code, 0) << b.out;
  EXPECT_NE(b.out.find("single-task baselines of " + cfg + " written to " + file), std::string::npos) << b.out;
  EXPECT_NE(b.out.find("macro_f1"), std::string::npos) << b.out;
  EXPECT_NE(b.out.find("3 steps, run directory " + dir.file("run.baselines/left")), std::string::npos) << b.out;
  ASSERT_TRUE(std::filesystem::exists(file));

  // --baselines reuses the matching file, then trains the multi-task model; its table shows delta-m.
  CliResult t = run_cli("train " + cfg + " -q --baselines");
  ASSERT_EQ(t.code, 0) << t.out;
  EXPECT_NE(t.out.find("using the single-task baselines in " + file), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("vs single-task baselines"), std::string::npos) << t.out;
  EXPECT_FALSE(std::filesystem::exists(dir.file("run.baselines/left-2"))) << "baselines were trained again";

  // mtl eval --output: the same delta-m as the run's last eval line.
  CliResult e = run_cli("eval " + cfg + " --checkpoint " + dir.file("run") + " --output " + dir.file("eval.json"));
  ASSERT_EQ(e.code, 0) << e.out;
  EXPECT_NE(e.out.find("positive = multi-task better"), std::string::npos) << e.out;
  auto out = nlohmann::json::parse(mtl_test::read_file(dir.file("eval.json")));
  std::istringstream log(mtl_test::read_file(dir.file("run/metrics.jsonl")));
  std::string line;
  nlohmann::json last;
  while (std::getline(log, line))
    if (line.find("\"event\":\"eval\"") != std::string::npos) last = nlohmann::json::parse(line);
  ASSERT_TRUE(out.contains("delta_m")) << out.dump();
  ASSERT_TRUE(last.contains("delta_m")) << last.dump();
  EXPECT_NEAR(out["delta_m"].get<double>(), last["delta_m"].get<double>(), 1e-6);

  // A stale file (other learning rate) is a note, and --baselines trains new ones.
  CliResult stale = run_cli("eval " + cfg + " --checkpoint " + dir.file("run") + " --set optimizer.lr=0.03");
  EXPECT_EQ(stale.code, 0) << stale.out;
  EXPECT_NE(stale.out.find("does not match this config: optimizer differs"), std::string::npos) << stale.out;
  EXPECT_EQ(stale.out.find("vs single-task baselines"), std::string::npos) << stale.out;

  // A malformed file: one line naming it, exit code 2, for eval and train alike.
  mtl_test::write_file(file, "{ not json");
  for (const std::string& cmd : {"eval " + cfg + " --checkpoint " + dir.file("run"), "train " + cfg + " -q"}) {
    CliResult bad = run_cli(cmd);
    EXPECT_EQ(bad.code, 2) << cmd << ": " << bad.out;
    // eval: the error is all; train: after its one "training ..." line
    EXPECT_EQ(lines(bad.out), cmd.rfind("eval", 0) == 0 ? 1u : 2u) << bad.out;
    EXPECT_NE(bad.out.find("mtl: error: " + file + ": not a valid mtl baselines file"), std::string::npos) << bad.out;
  }
}

TEST(Cli, BaselinesOfOneTaskIsAnError) {
  if (!std::filesystem::exists(std::string(MTL_BINARY_DIR) + "/mtl")) GTEST_SKIP() << "CLI not built";
  mtl_test::TempDir dir("cli_baselines_one");
  mtl_test::write_file(dir.file("one.yaml"), "data: {type: multi_fashion}\nmodel: {backbone: lenet}\ntasks: {left: {}}\n");
  CliResult r = run_cli("baselines " + dir.file("one.yaml"));
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(lines(r.out), 1u) << r.out;
  EXPECT_NE(r.out.find("need a config with at least 2 tasks"), std::string::npos) << r.out;
}

TEST(Cli, ExportWritesTheCheckpointsModelTensorsAsSafetensors) {
  if (!std::filesystem::exists(std::string(MTL_BINARY_DIR) + "/mtl")) GTEST_SKIP() << "CLI not built";
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  mtl_test::TempDir dir("cli_export");
  const std::string cfg = dir.file("tiny.yaml");
  mtl_test::write_file(cfg, "data: {type: multi_fashion, train_size: 100, test_size: 50, cache_dir: '" +
                                dir.file("cache") + "'}\nmodel: {backbone: lenet}\n"
                                "tasks: {left: {label: left}, right: {label: right}}\n"
                                "trainer: {epochs: 1, batch_size: 50, threads: 1, seed: 1, run_dir: '" +
                                dir.file("run") + "'}\n");
  CliResult t = run_cli("train " + cfg + " -q");
  ASSERT_EQ(t.code, 0) << t.out;

  const std::string out = dir.file("model.safetensors");
  CliResult e = run_cli("export " + dir.file("run") + " " + out);
  ASSERT_EQ(e.code, 0) << e.out;
  EXPECT_EQ(lines(e.out), 1u) << e.out;
  EXPECT_NE(e.out.find("exported "), std::string::npos) << e.out;
  EXPECT_NE(e.out.find(" bytes"), std::string::npos) << e.out;
  mtl::SafetensorsContents file = mtl::read_safetensors(out);

  // The same tensors, by name, as the checkpoint restored into the run's model.
  mtl::Run ex = mtl::assemble(mtl::Config::load(dir.file("run/config.yaml")),
                                             mtl::AssembleOptions{dir.file("run")});
  mtl::load_checkpoint(dir.file("run/checkpoint.pt"), {ex.model.get(), nullptr, nullptr}, false);
  std::map<std::string, at::Tensor> want;
  for (const auto& kv : ex.model->named_parameters()) want[kv.key()] = kv.value();
  for (const auto& kv : ex.model->named_buffers()) want[kv.key()] = kv.value();
  ASSERT_EQ(file.tensors.size(), want.size());
  for (const auto& [name, tensor] : file.tensors) {
    ASSERT_TRUE(want.count(name)) << name;
    EXPECT_EQ(tensor.scalar_type(), want[name].scalar_type()) << name;
    EXPECT_TRUE(torch::equal(tensor, want[name])) << name;
  }
  EXPECT_EQ(file.tensors.front().first, "backbone.conv1.weight");  // the model's own names, in its order
  EXPECT_TRUE(want.count("heads.left.out.weight"));
  std::map<std::string, std::string> meta(file.metadata.begin(), file.metadata.end());
  EXPECT_EQ(meta["format"], "mtl");
  EXPECT_EQ(meta["tasks"], "left,right");
  EXPECT_EQ(meta["config"], dir.file("run/config.yaml"));

  // A checkpoint file works as well as its run directory.
  CliResult f = run_cli("export " + dir.file("run/checkpoint.pt") + " " + dir.file("again.safetensors"));
  ASSERT_EQ(f.code, 0) << f.out;
  EXPECT_EQ(mtl_test::read_file(dir.file("again.safetensors")), mtl_test::read_file(out));

  // To a PyTorch state dict (.pt): mtl reads back the same tensors; PyTorch's torch.load reads such files
  // (tests/io/torch_state_dict_test.cpp).
  CliResult p = run_cli("export " + dir.file("run") + " " + dir.file("model.pt"));
  ASSERT_EQ(p.code, 0) << p.out;
  mtl::NamedTensors pt = mtl::read_torch_state_dict(dir.file("model.pt"));
  ASSERT_EQ(pt.size(), file.tensors.size());
  for (size_t i = 0; i < pt.size(); ++i) {
    EXPECT_EQ(pt[i].first, file.tensors[i].first);
    EXPECT_TRUE(torch::equal(pt[i].second, file.tensors[i].second)) << pt[i].first;
  }

  // Missing checkpoints: one line, exit code 2, nothing written.
  for (const std::string& missing : {dir.file("nope"), dir.file("cache")}) {
    CliResult m = run_cli("export " + missing + " " + dir.file("x.safetensors"));
    EXPECT_EQ(m.code, 2) << m.out;
    EXPECT_EQ(lines(m.out), 1u) << m.out;
    EXPECT_NE(m.out.find("mtl: error: " + missing), std::string::npos) << m.out;
  }
  EXPECT_FALSE(std::filesystem::exists(dir.file("x.safetensors")));
  EXPECT_NE(run_cli("--help").out.find("export"), std::string::npos);
}
