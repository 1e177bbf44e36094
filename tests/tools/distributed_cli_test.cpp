// `mtl train` as ranks of a distributed run on loopback, started by the test with torchrun's environment
// variables (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT): 2 processes x 1 thread end with the weights of
// 1 process x 2 threads (same shards, gradients reduced by c10d Gloo instead of in-process); rank 0 alone
// writes the run directory; configs that differ between ranks and a rank that never comes are one-line
// errors with a non-zero exit.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>

#include "mtl/io/checkpoint.h"
#include "mtl/run/assembler.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {

const std::string kMtl = std::string(MTL_BINARY_DIR) + "/mtl";

// A TCP port nothing listens on right now (the kernel's pick for port 0).
int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (fd >= 0) close(fd);
    return 29555;
  }
  const int port = ntohs(a.sin_port);
  close(fd);
  return port;
}

std::string config(const mtl_test::TempDir& dir, const std::string& weighting) {
  const std::string cfg = dir.file("dist.yaml");
  mtl_test::write_file(cfg, "data: {type: multi_fashion, train_size: 240, test_size: 100, cache_dir: '" +
                                dir.file("cache") + "'}\nmodel: {backbone: lenet}\n"
                                "tasks: {left: {label: left}, right: {label: right}}\n"
                                "weighting: " + weighting + "\n"
                                "optimizer: {type: sgd, lr: 0.05, momentum: 0.9}\n"
                                "trainer: {epochs: 1, max_steps: 8, batch_size: 24, threads: 1, seed: 1, "
                                "eval_interval: 0}\nbaselines: none\ndistributed: {timeout: 20}\n");
  return cfg;
}

// `ranks` processes of `mtl train ARGS` with the launcher's variables; returns each rank's exit code and output.
std::vector<mtl_test::ShellRun> launch(const mtl_test::TempDir& dir, int ranks, const std::vector<std::string>& args) {
  const int port = free_port();
  std::string cmd;
  for (int r = 0; r < ranks; ++r)
    cmd += "(RANK=" + std::to_string(r) + " WORLD_SIZE=" + std::to_string(ranks) + " LOCAL_RANK=" +
           std::to_string(r) + " LOCAL_WORLD_SIZE=" + std::to_string(ranks) +
           " MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " " + kMtl + " train " + args[r] + " -q > " +
           dir.file("rank" + std::to_string(r) + ".out") + " 2>&1; echo $? > " + dir.file("rank" + std::to_string(r) + ".rc") +
           ") & ";
  cmd += "wait";
  mtl_test::ShellRun all = mtl_test::run_shell(cmd);
  EXPECT_EQ(all.code, 0) << all.out;
  std::vector<mtl_test::ShellRun> out(ranks);
  for (int r = 0; r < ranks; ++r) {
    out[r].out = mtl_test::read_file(dir.file("rank" + std::to_string(r) + ".out"));
    out[r].code = std::stoi(mtl_test::read_file(dir.file("rank" + std::to_string(r) + ".rc")));
  }
  return out;
}

std::vector<at::Tensor> final_weights(const std::string& run_dir) {
  mtl::Run ex = mtl::assemble(mtl::Config::load(run_dir + "/config.yaml"), mtl::AssembleOptions{run_dir});
  mtl::load_checkpoint(run_dir + "/checkpoint.pt", {ex.model.get(), nullptr, nullptr}, false);
  std::vector<at::Tensor> out;
  for (const auto& p : ex.model->parameters()) out.push_back(p.detach().clone());
  return out;
}

size_t lines(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

size_t error_lines(const std::string& s) {
  size_t n = 0;
  for (size_t at = s.find("mtl: error:"); at != std::string::npos; at = s.find("mtl: error:", at + 1)) ++n;
  return n;
}

}  // namespace

TEST(DistributedCli, TwoProcessesTrainAsOneProcessWithTwoThreads) {
  if (!fs::exists(kMtl)) GTEST_SKIP() << "CLI not built";
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  for (const std::string weighting : {"{method: ew}", "{method: mgda}"}) {
    mtl_test::TempDir dir("dist_cli");
    const std::string cfg = config(dir, weighting);
    mtl_test::ShellRun one = mtl_test::run_shell(kMtl + " train " + cfg + " -q --threads 2 --set trainer.run_dir=" +
                                                 dir.file("one"));
    ASSERT_EQ(one.code, 0) << one.out;
    const std::string args = cfg + " --threads 1 --set trainer.run_dir=" + dir.file("two");
    std::vector<mtl_test::ShellRun> ranks = launch(dir, 2, {args, args});
    ASSERT_EQ(ranks[0].code, 0) << ranks[0].out;
    ASSERT_EQ(ranks[1].code, 0) << ranks[1].out;
    EXPECT_NE(ranks[0].out.find("2 processes"), std::string::npos) << ranks[0].out;
    EXPECT_NE(ranks[0].out.find("test metrics"), std::string::npos) << ranks[0].out;
    EXPECT_EQ(ranks[1].out, "") << "only rank 0 reports";
    EXPECT_FALSE(fs::exists(dir.file("two-2"))) << "rank 1 must not create a run directory";

    const std::vector<at::Tensor> want = final_weights(dir.file("one")), got = final_weights(dir.file("two"));
    ASSERT_EQ(want.size(), got.size());
    for (size_t k = 0; k < want.size(); ++k)
      EXPECT_LE((got[k] - want[k]).norm().item<double>() / std::max(1e-12, want[k].norm().item<double>()), 1e-5)
          << weighting << ", parameter " << k;
    // Rank 0 logged the same losses as the one-process run.
    EXPECT_EQ(lines(mtl_test::read_file(dir.file("two/metrics.jsonl"))),
              lines(mtl_test::read_file(dir.file("one/metrics.jsonl"))));
  }
}

TEST(DistributedCli, DifferentConfigsAndAMissingRankAreOneLineErrors) {
  if (!fs::exists(kMtl)) GTEST_SKIP() << "CLI not built";
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  mtl_test::TempDir dir("dist_cli_bad");
  const std::string cfg = config(dir, "{method: ew}");
  const std::string args = cfg + " --set trainer.run_dir=" + dir.file("run");
  std::vector<mtl_test::ShellRun> ranks = launch(dir, 2, {args, args + " --set optimizer.lr=0.1"});
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(ranks[r].code, 2) << ranks[r].out;
    EXPECT_NE(ranks[r].out.find("different configs"), std::string::npos) << ranks[r].out;
    EXPECT_EQ(error_lines(ranks[r].out), 1u) << ranks[r].out;  // rank 0 also printed its "training" line
  }

  // Rank 1 of 2 never starts: rank 0 gives up after distributed.timeout with one line.
  const int port = free_port();
  mtl_test::ShellRun alone = mtl_test::run_shell(
      "RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " " + kMtl + " train " + cfg +
      " -q --set distributed.timeout=3 --set trainer.run_dir=" + dir.file("alone"));
  EXPECT_EQ(alone.code, 2) << alone.out;
  EXPECT_EQ(lines(alone.out), 1u) << alone.out;
  EXPECT_NE(alone.out.find("did not form"), std::string::npos) << alone.out;

  // Bad launcher variables.
  mtl_test::ShellRun bad = mtl_test::run_shell("RANK=2 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=1234 " + kMtl +
                                               " train " + cfg + " -q");
  EXPECT_EQ(bad.code, 2) << bad.out;
  EXPECT_NE(bad.out.find("RANK"), std::string::npos) << bad.out;
}
