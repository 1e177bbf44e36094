// `mtl train` as ranks of a distributed run on loopback, started by the test with torchrun's environment
// variables (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT): 2 processes x 1 thread end with the weights of
// 1 process x 2 threads (same shards, gradients reduced by c10d Gloo instead of in-process); rank 0 alone
// writes the run directory; configs that differ between ranks and a rank that never comes are one-line
// errors with a non-zero exit.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "mtl/dist/local_launcher.h"
#include "mtl/io/checkpoint.h"
#include "mtl/run/assembler.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {

const std::string kMtl = std::string(MTL_BINARY_DIR) + "/mtl";

// A shell line that waits (up to 60 s) until RUN/checkpoint.pt exists: the first checkpoint of a run started in
// the background.
std::string wait_for_checkpoint(const std::string& run) {
  return "for i in $(seq 1 1200); do [ -f " + run + "/checkpoint.pt ] && break; sleep 0.05; done\n";
}

std::string config(const mtl_test::TempDir& dir, const std::string& weighting, const std::string& name = "dist.yaml") {
  const std::string cfg = dir.file(name);
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
  const int port = mtl::free_local_port();
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

// The last line of a metrics log with this event ("eval", "collectives", ...); empty if none.
nlohmann::json last_event(const std::string& metrics_path, const std::string& event) {
  nlohmann::json last = nlohmann::json::object();
  std::istringstream in(mtl_test::read_file(metrics_path));
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line);
    if (j.value("event", "") == event) last = j;
  }
  return last;
}
nlohmann::json last_eval(const std::string& metrics_path) { return last_event(metrics_path, "eval"); }

double max_relative_difference(const std::vector<at::Tensor>& got, const std::vector<at::Tensor>& want) {
  EXPECT_EQ(got.size(), want.size());
  double worst = 0.0;
  for (size_t k = 0; k < std::min(got.size(), want.size()); ++k)
    worst = std::max(worst, (got[k] - want[k]).norm().item<double>() / std::max(1e-12, want[k].norm().item<double>()));
  return worst;
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
    // Rank 0 logged the one-process run's lines (and the bytes per step), and the final evaluation (each rank evaluated half of
    // the test batches) equals the one-process one.
    EXPECT_EQ(lines(mtl_test::read_file(dir.file("two/metrics.jsonl"))),
              lines(mtl_test::read_file(dir.file("one/metrics.jsonl"))) + 1)
        << "the same lines and one `collectives` line";
    // The bytes each rank put into collectives per step: the gradient (float32) and, for ew, little else (the
    // losses, flags, the stop flag); mgda's T x P matrix of trunk gradients is larger.
    int64_t params = 0;
    for (const at::Tensor& w : want) params += w.numel();
    const double bytes = last_event(dir.file("two/metrics.jsonl"), "collectives").value("bytes_per_step", 0.0);
    EXPECT_GE(bytes, 4.0 * params) << weighting;
    if (weighting == "{method: ew}") EXPECT_LE(bytes, 4.0 * params + 1024) << weighting;
    if (weighting == "{method: mgda}") EXPECT_GE(bytes, 4.0 * params * 1.5) << weighting;
    const nlohmann::json want_eval = last_eval(dir.file("one/metrics.jsonl")),
                         got_eval = last_eval(dir.file("two/metrics.jsonl"));
    ASSERT_TRUE(want_eval.contains("left/accuracy")) << want_eval.dump();
    for (const auto& [key, value] : want_eval.items()) {
      if (!value.is_number() || key == "step" || key == "epoch") continue;
      ASSERT_TRUE(got_eval.contains(key)) << key;
      EXPECT_NEAR(got_eval[key].get<double>(), value.get<double>(), 1e-5) << weighting << ", " << key;
    }
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
  const int port = mtl::free_local_port();
  mtl_test::ShellRun alone = mtl_test::run_shell(
      "RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " " + kMtl + " train " + cfg +
      " -q --set distributed.timeout=3 --set trainer.run_dir=" + dir.file("alone"));
  EXPECT_EQ(alone.code, 2) << alone.out;
  EXPECT_EQ(lines(alone.out), 1u) << alone.out;
  EXPECT_NE(alone.out.find("did not form"), std::string::npos) << alone.out;

  // MASTER_PORT taken by another program: rank 0 cannot host the store.
  {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    ASSERT_EQ(listen(fd, 1), 0);
    ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
    mtl_test::ShellRun taken = mtl_test::run_shell(
        "RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(ntohs(a.sin_port)) + " " + kMtl +
        " train " + cfg + " -q --set distributed.timeout=3 --set trainer.run_dir=" + dir.file("taken"));
    close(fd);
    EXPECT_EQ(taken.code, 2) << taken.out;
    EXPECT_EQ(lines(taken.out), 1u) << taken.out;
    EXPECT_NE(taken.out.find("in use"), std::string::npos) << taken.out;
  }

  // Bad launcher variables.
  mtl_test::ShellRun bad = mtl_test::run_shell("RANK=2 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=1234 " + kMtl +
                                               " train " + cfg + " -q");
  EXPECT_EQ(bad.code, 2) << bad.out;
  EXPECT_NE(bad.out.find("RANK"), std::string::npos) << bad.out;
}

// A 2-process run stopped at step 4 resumes on 1 process (2 threads) and on 3 processes (1 thread each) to the
// weights of an uninterrupted one-process run of 8 steps: the checkpoint holds no world size, every split of a
// batch gives the full-batch gradient.
TEST(DistributedCli, ATwoProcessCheckpointResumesOnOneAndOnThreeProcesses) {
  if (!fs::exists(kMtl)) GTEST_SKIP() << "CLI not built";
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  mtl_test::TempDir dir("dist_resume");
  const std::string cfg = config(dir, "{method: mgda}");
  mtl_test::ShellRun one = mtl_test::run_shell(kMtl + " train " + cfg + " -q --threads 2 --set trainer.run_dir=" +
                                               dir.file("one"));
  ASSERT_EQ(one.code, 0) << one.out;
  const std::string first = cfg + " --threads 1 --set trainer.max_steps=4 --set trainer.run_dir=" + dir.file("two");
  std::vector<mtl_test::ShellRun> ranks = launch(dir, 2, {first, first});
  ASSERT_EQ(ranks[0].code, 0) << ranks[0].out;
  ASSERT_EQ(ranks[1].code, 0) << ranks[1].out;
  mtl_test::run_shell("cp -r " + dir.file("two") + " " + dir.file("on1") + " && cp -r " + dir.file("two") + " " +
                      dir.file("on3"));

  mtl_test::ShellRun on1 = mtl_test::run_shell(kMtl + " train -q --resume " + dir.file("on1") +
                                               " --threads 2 --set trainer.max_steps=8");
  ASSERT_EQ(on1.code, 0) << on1.out;
  const std::string again = "--resume " + dir.file("on3") + " --threads 1 --set trainer.max_steps=8";
  std::vector<mtl_test::ShellRun> on3 = launch(dir, 3, {again, again, again});
  for (int r = 0; r < 3; ++r) ASSERT_EQ(on3[r].code, 0) << "rank " << r << ": " << on3[r].out;
  EXPECT_TRUE(fs::exists(dir.file("on3/config.resumed.yaml")));

  const std::vector<at::Tensor> want = final_weights(dir.file("one"));
  EXPECT_LE(max_relative_difference(final_weights(dir.file("on1")), want), 1e-5) << "resumed on 1 process";
  EXPECT_LE(max_relative_difference(final_weights(dir.file("on3")), want), 1e-5) << "resumed on 3 processes";
  EXPECT_GT(max_relative_difference(final_weights(dir.file("two")), want), 1e-3) << "step 4 is not step 8";
}

namespace {

// Starts `world` ranks of a long run, waits for its first checkpoint, sends `signal` to rank `victim`, and
// returns each other rank's exit code and output and the milliseconds from the signal to their exit.
struct Outage {
  std::vector<mtl_test::ShellRun> ranks;
  int64_t ms = 0;
};
Outage stop_a_rank(const mtl_test::TempDir& dir, int world, int victim, const std::string& signal, int timeout_s) {
  const std::string cfg = config(dir, "{method: ew}", "long.yaml");
  const std::string run = dir.file("run-" + signal);
  std::string script = "pids=()\n";
  const int port = mtl::free_local_port();
  for (int r = 0; r < world; ++r)
    script += "RANK=" + std::to_string(r) + " WORLD_SIZE=" + std::to_string(world) +
              " MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " " + kMtl + " train " + cfg +
              " -q --set trainer.epochs=100000 --set trainer.max_steps=0 --set distributed.timeout=" +
              std::to_string(timeout_s) + " --set trainer.run_dir=" + run + " > " + dir.file("out" + std::to_string(r)) +
              " 2>&1 &\npids+=($!)\n";
  script += wait_for_checkpoint(run) +
            "t0=$(date +%s%N)\nkill -" + signal + " ${pids[" + std::to_string(victim) + "]}\n";
  for (int r = 0; r < world; ++r)
    if (r != victim)
      script += "wait ${pids[" + std::to_string(r) + "]}; echo $? > " + dir.file("rc" + std::to_string(r)) + "\n";
  script += "echo $(( ($(date +%s%N) - t0) / 1000000 )) > " + dir.file("ms") + "\nkill -9 ${pids[" +
            std::to_string(victim) + "]}; wait\n";
  mtl_test::write_file(dir.file("outage.sh"), script);
  mtl_test::run_shell("bash " + dir.file("outage.sh"));
  Outage o;
  o.ranks.resize(world);
  for (int r = 0; r < world; ++r) {
    if (r == victim) continue;
    o.ranks[r].out = mtl_test::read_file(dir.file("out" + std::to_string(r)));
    o.ranks[r].code = std::stoi(mtl_test::read_file(dir.file("rc" + std::to_string(r))));
  }
  o.ms = std::stoll(mtl_test::read_file(dir.file("ms")));
  return o;
}

}  // namespace

// A rank killed mid-training (kill -9) or hung (SIGSTOP) ends every other rank within distributed.timeout with
// one error line that names it (their liveness counters in the store stood still), exit code 2, never a hang.
TEST(DistributedCli, AKilledOrHungRankEndsTheOthersWithALineNamingIt) {
  if (!fs::exists(kMtl)) GTEST_SKIP() << "CLI not built";
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  {
    mtl_test::TempDir dir("dist_killed");
    const Outage o = stop_a_rank(dir, 3, 2, "9", 20);
    for (int r : {0, 1}) {
      EXPECT_EQ(o.ranks[r].code, 2) << "rank " << r << ": " << o.ranks[r].out;
      EXPECT_EQ(error_lines(o.ranks[r].out), 1u) << o.ranks[r].out;
      EXPECT_NE(o.ranks[r].out.find("rank 2 stopped answering"), std::string::npos) << o.ranks[r].out;
    }
    EXPECT_LT(o.ms, 20000) << "the others took longer than distributed.timeout to give up";
  }
  {
    mtl_test::TempDir dir("dist_hung");
    const Outage o = stop_a_rank(dir, 2, 1, "STOP", 4);
    EXPECT_EQ(o.ranks[0].code, 2) << o.ranks[0].out;
    EXPECT_EQ(error_lines(o.ranks[0].out), 1u) << o.ranks[0].out;
    EXPECT_NE(o.ranks[0].out.find("rank 1 stopped answering"), std::string::npos) << o.ranks[0].out;
    EXPECT_LT(o.ms, 4000 + 3000 + 5000) << "the timeout, then 3 s to tell which rank stopped (and slack)";
  }
}

// torchrun --max_restarts 1 with trainer.resume: auto: a worker killed mid-training (after its first checkpoint)
// makes torchrun restart the group, which continues from the checkpoint and ends with the weights of an
// uninterrupted run of the same 2 processes (deterministic mode).
TEST(DistributedCli, TorchrunRestartsAKilledGroupThatResumesToTheUninterruptedWeights) {
  if (!fs::exists(kMtl)) GTEST_SKIP() << "CLI not built";
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  if (!fs::exists("/usr/bin/torchrun")) GTEST_SKIP() << "torchrun (python3-torch) is not installed";
  mtl_test::TempDir dir("dist_restart");
  const std::string cfg = config(dir, "{method: mgda}", "restart.yaml");
  const std::string sets = " --set trainer.epochs=12 --set trainer.max_steps=0 --set trainer.resume=auto";
  const std::string plain = cfg + " --threads 1" + sets + " --set trainer.run_dir=" + dir.file("one");
  std::vector<mtl_test::ShellRun> uninterrupted = launch(dir, 2, {plain, plain});
  ASSERT_EQ(uninterrupted[0].code, 0) << uninterrupted[0].out;

  const std::string run = dir.file("run");
  const std::string script =
      "/usr/bin/torchrun --nproc_per_node 2 --max_restarts 1 --monitor_interval 1 --redirects 1 --tee 1 "
      "--master_addr 127.0.0.1 --master_port " + std::to_string(mtl::free_local_port()) + " --no_python " + kMtl +
      " train " +
      cfg + " -q --threads 1" + sets + " --set trainer.run_dir=" + run + " > " + dir.file("torchrun.out") +
      " 2>&1 &\ntr=$!\n" +
      wait_for_checkpoint(run) +
      "victim=$(pgrep -f '^" + kMtl + " train " + cfg + "' | head -1)\n"
      "[ -n \"$victim\" ] && kill -9 $victim && echo killed > " + dir.file("killed") + "\n"
      "wait $tr; echo $? > " + dir.file("rc") + "\n";
  mtl_test::write_file(dir.file("restart.sh"), script);
  mtl_test::run_shell("bash " + dir.file("restart.sh"));
  const std::string out = mtl_test::read_file(dir.file("torchrun.out"));
  ASSERT_TRUE(fs::exists(dir.file("killed"))) << "no worker to kill: " << out;
  EXPECT_EQ(mtl_test::read_file(dir.file("rc")), "0\n") << out;
  EXPECT_FALSE(fs::exists(run + "-2")) << "the restart must continue the same run directory";
  EXPECT_TRUE(fs::exists(run + "/config.resumed.yaml")) << "the restarted group did not resume: " << out;
  EXPECT_LE(max_relative_difference(final_weights(run), final_weights(dir.file("one"))), 1e-5) << out;
}

// `mtl train --nproc 2` starts the two ranks itself (torchrun's variables, a free port) and trains as 1 process x
// 2 threads; rank 0 alone reports. A bad config is one line from the launcher; --nproc under a launcher is refused.
TEST(DistributedCli, NprocStartsTheRanksOnThisMachine) {
  if (!fs::exists(kMtl)) GTEST_SKIP() << "CLI not built";
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  mtl_test::TempDir dir("dist_nproc");
  const std::string cfg = config(dir, "{method: ew}");
  mtl_test::ShellRun one = mtl_test::run_shell(kMtl + " train " + cfg + " -q --threads 2 --set trainer.run_dir=" +
                                               dir.file("one"));
  ASSERT_EQ(one.code, 0) << one.out;
  mtl_test::ShellRun two = mtl_test::run_shell(kMtl + " train " + cfg + " --nproc 2 -q --threads 1 --set trainer.run_dir=" +
                                               dir.file("two"));
  ASSERT_EQ(two.code, 0) << two.out;
  EXPECT_NE(two.out.find("2 processes"), std::string::npos) << two.out;
  EXPECT_EQ(two.out.find("test metrics"), two.out.rfind("test metrics")) << "only rank 0 reports: " << two.out;
  EXPECT_FALSE(fs::exists(dir.file("two-2")));
  EXPECT_LE(max_relative_difference(final_weights(dir.file("two")), final_weights(dir.file("one"))), 1e-5);

  mtl_test::ShellRun bad = mtl_test::run_shell(kMtl + " train " + cfg + " --nproc=2 -q --set optimizer.lr=-1");
  EXPECT_EQ(bad.code, 2) << bad.out;
  EXPECT_EQ(lines(bad.out), 1u) << bad.out;
  mtl_test::ShellRun nested = mtl_test::run_shell("WORLD_SIZE=2 " + kMtl + " train " + cfg + " --nproc 2 -q");
  EXPECT_EQ(nested.code, 2) << nested.out;
  EXPECT_NE(nested.out.find("WORLD_SIZE=2 is already set"), std::string::npos) << nested.out;
}

// Ctrl-C on `mtl train --nproc 2` (SIGINT to the terminal's process group: the launcher and both ranks): the ranks
// agree on the step to stop after, rank 0 writes the checkpoint, every process exits 130, and `--resume` on
// 2 processes ends with the weights of an uninterrupted run.
TEST(DistributedCli, CtrlCStopsEveryRankAfterTheSameStepAndTheRunResumes) {
  if (!fs::exists(kMtl)) GTEST_SKIP() << "CLI not built";
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  mtl_test::TempDir dir("dist_sigint");
  const std::string cfg = config(dir, "{method: ew}");
  const std::string sets = " --nproc 2 -q --threads 1 --set trainer.epochs=12 --set trainer.max_steps=0";
  mtl_test::ShellRun plain = mtl_test::run_shell(kMtl + " train " + cfg + sets + " --set trainer.run_dir=" +
                                                 dir.file("plain"));
  ASSERT_EQ(plain.code, 0) << plain.out;
  const std::string run = dir.file("run");
  mtl_test::write_file(dir.file("sigint.sh"),
                       "setsid " + kMtl + " train " + cfg + sets + " --set trainer.run_dir=" + run + " > " +
                           dir.file("out") + " 2>&1 &\npid=$!\n" +
                           wait_for_checkpoint(run) +
                           "kill -INT -- -$pid\nwait $pid; echo $? > " + dir.file("rc") + "\n");
  mtl_test::run_shell("bash " + dir.file("sigint.sh"));
  const std::string out = mtl_test::read_file(dir.file("out"));
  ASSERT_EQ(mtl_test::read_file(dir.file("rc")), "130\n") << out;
  EXPECT_EQ(error_lines(out), 0u) << out;
  mtl_test::ShellRun resumed = mtl_test::run_shell(kMtl + " train --resume " + run + " --nproc 2 -q --threads 1");
  ASSERT_EQ(resumed.code, 0) << resumed.out;
  EXPECT_LE(max_relative_difference(final_weights(run), final_weights(dir.file("plain"))), 1e-6);
}

// tools/slurm_rank.sh maps SLURM's task variables (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID,
// SLURM_NTASKS_PER_NODE in its "2(x3)" form) onto torchrun's: two "tasks" on this machine form one run.
TEST(DistributedCli, TheSlurmRankScriptMapsSlurmsVariables) {
  if (!fs::exists(kMtl)) GTEST_SKIP() << "CLI not built";
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  mtl_test::TempDir dir("dist_slurm");
  const std::string cfg = config(dir, "{method: ew}");
  const std::string script = mtl_test::source_path("tools/slurm_rank.sh");
  std::string cmd;
  const int port = mtl::free_local_port();
  for (int r = 0; r < 2; ++r)
    cmd += "(env -u RANK -u WORLD_SIZE SLURM_PROCID=" + std::to_string(r) +
           " SLURM_NTASKS=2 SLURM_LOCALID=" + std::to_string(r) + " SLURM_NTASKS_PER_NODE='2(x1)' SLURM_JOB_ID=7 "
           "MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " MTL=" + kMtl + " bash " + script +
           " train " + cfg + " -q --threads 1 --set trainer.run_dir=" + dir.file("run") + " > " +
           dir.file("out" + std::to_string(r)) + " 2>&1; echo $? > " + dir.file("rc" + std::to_string(r)) + ") & ";
  mtl_test::run_shell(cmd + "wait");
  for (int r = 0; r < 2; ++r)
    EXPECT_EQ(mtl_test::read_file(dir.file("rc" + std::to_string(r))), "0\n")
        << mtl_test::read_file(dir.file("out" + std::to_string(r)));
  EXPECT_NE(mtl_test::read_file(dir.file("out0")).find("2 processes"), std::string::npos);
  EXPECT_TRUE(fs::exists(dir.file("run/checkpoint.pt")));
  mtl_test::ShellRun outside = mtl_test::run_shell("env -u SLURM_PROCID bash " + script + " train " + cfg);
  EXPECT_NE(outside.code, 0);
  EXPECT_NE(outside.out.find("start it with srun"), std::string::npos) << outside.out;
}
