// The mtl CLI: exit codes and one-line errors for bad input, inspect output.
#include <cstdio>
#include <filesystem>

#include "test_util.h"

namespace {
struct CliResult {
  int code;
  std::string out;  // stdout + stderr
};
CliResult run_cli(const std::string& args) {
  std::string cmd = std::string(MTL_BINARY_DIR) + "/mtl " + args + " 2>&1";
  CliResult r{0, ""};
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}
size_t lines(const std::string& s) { return std::count(s.begin(), s.end(), '\n'); }
}  // namespace

TEST(Cli, HelpAndSubcommandHelp) {
  if (!std::filesystem::exists(std::string(MTL_BINARY_DIR) + "/mtl")) GTEST_SKIP() << "CLI not built";
  CliResult r = run_cli("--help");
  EXPECT_EQ(r.code, 0);
  for (auto s : {"train", "eval", "predict", "inspect"}) EXPECT_NE(r.out.find(s), std::string::npos) << s;
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
  EXPECT_NE(r.out.find("task left"), std::string::npos);
  EXPECT_NE(r.out.find("task right"), std::string::npos);
}
