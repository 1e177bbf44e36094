// Failures during training (issue 20): stop signals (SIGTERM like Ctrl-C, a second signal exits at once), a run
// that dies mid-way and resumes to the uninterrupted run's log and result, the run-directory lock, the
// non-finite guard (`trainer.on_nonfinite: stop | skip`), and write errors (a file size limit) that leave the
// previous checkpoint loadable.
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "mtl/core/error.h"
#include "mtl/core/stop_signal.h"
#include "mtl/engine/engine.h"
#include "mtl/engine/nonfinite.h"
#include "mtl/io/checkpoint.h"
#include "mtl/io/dir_lock.h"
#include "mtl/io/metrics_log.h"
#include "mtl/optim/param_groups.h"
#include "mtl/run/assembler.h"
#include "mtl/run/trainer.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {

std::string mtl_cli() { return std::string(MTL_BINARY_DIR) + "/mtl"; }

// 40 rows of two features and two class labels; `bad_row` >= 0 gets the feature 1e39, finite in the CSV but
// infinite as float32, so every batch that holds it has a non-finite loss.
void write_csv(const std::string& path, int bad_row = -1, int rows = 40) {
  std::string csv = "x1,x2,a,b\n";
  for (int i = 0; i < rows; ++i)
    csv += (i == bad_row ? std::string("1e39") : std::to_string(i % 5)) + "," + std::to_string(i % 7) + "," +
           std::to_string(i % 3) + "," + std::to_string(i % 2) + "\n";
  mtl_test::write_file(path, csv);
}

std::string csv_yaml(const std::string& csv, const std::string& run_dir, int epochs, const std::string& extra = "",
                     const std::string& method = "gradvac") {
  return "data: {type: csv, train: " + csv + ", test: " + csv +
         ", labels: {a: {}, b: {}}}\nmodel: {backbone: {type: mlp, hidden: [16]}}\n"
         "tasks: {a: {}, b: {}}\nweighting: {method: " + method + "}\noptimizer: {type: adam, lr: 0.01}\n"
         "trainer: {epochs: " + std::to_string(epochs) + ", batch_size: 8, threads: 2, seed: 3, log_interval: 1, "
         "checkpoint_interval: 3, run_dir: " + run_dir + extra + "}\nbaselines: none\n";
}

mtl::TrainSummary train_yaml(const std::string& yaml, const std::string& resume = "",
                             std::vector<mtl::TrainObserver*> observers = {}) {
  mtl::Run run = mtl::assemble(mtl::Config::from_string(yaml, "robust.yaml"));
  mtl::TrainRunOptions options{resume, false};
  options.observers = std::move(observers);
  return mtl::train(run, options);
}

// metrics.jsonl without what differs between two runs of the same training (wall times, throughput).
std::string log_without_timings(const std::string& path) {
  std::istringstream in(mtl_test::read_file(path));
  std::string out;
  for (std::string line; std::getline(in, line);) {
    nlohmann::ordered_json j = nlohmann::ordered_json::parse(line);
    for (const char* k : {"seconds", "examples_per_second", "data_wait_share"}) j.erase(k);
    out += j.dump() + "\n";
  }
  return out;
}

// Does something to the run at the end of one step: raises a signal, or throws (a process that dies there).
class AtStep : public mtl::TrainObserver {
 public:
  AtStep(int64_t step, std::function<void()> what) : step_(step), what_(std::move(what)) {}
  void step_done(const mtl::TrainPosition& pos, const mtl::StepResult&) override {
    if (pos.step == step_) what_();
  }

 private:
  int64_t step_;
  std::function<void()> what_;
};

struct Died : std::runtime_error {
  Died() : std::runtime_error("died") {}
};

// The error of a failed command: one line, its last, beginning "mtl: error:" (a banner may come before it).
std::string expect_one_line(const std::string& out) {
  const size_t at = out.rfind("mtl: error:");
  EXPECT_NE(at, std::string::npos) << out;
  if (at == std::string::npos) return "";
  const std::string line = out.substr(at);
  EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1) << out;
  EXPECT_EQ(out.find("mtl: error:"), at) << out;  // only one
  return line;
}

}  // namespace

TEST(StopSignal, SigtermIsAStopRequestAndExitCodeFollowsTheSignal) {
  EXPECT_FALSE(mtl::stop_requested());
  {
    mtl::StopSignalScope outer;
    {
      mtl::StopSignalScope inner;
      std::raise(SIGTERM);
      EXPECT_TRUE(mtl::stop_requested());
    }
    EXPECT_FALSE(mtl::stop_requested());  // the inner scope took it
    EXPECT_EQ(mtl::last_stop_signal(), SIGTERM);
    EXPECT_EQ(mtl::stopped_exit_code(), 143);
    std::raise(SIGINT);
    EXPECT_TRUE(mtl::stop_requested());
    EXPECT_EQ(mtl::stopped_exit_code(), 130);
  }
  EXPECT_FALSE(mtl::stop_requested());
}

TEST(StopSignalDeathTest, ASecondSignalExitsAtOnce) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        mtl::StopSignalScope scope;
        std::raise(SIGTERM);
        std::raise(SIGTERM);
        std::exit(0);  // not reached
      },
      testing::ExitedWithCode(143), "second stop signal, exiting now");
  EXPECT_EXIT(
      {
        mtl::StopSignalScope scope;
        std::raise(SIGINT);
        std::raise(SIGINT);
        std::exit(0);
      },
      testing::ExitedWithCode(130), "second stop signal");
}

TEST(Robustness, SigtermStopsAfterTheStepWithACheckpointAndTheResumedRunEqualsAnUninterruptedOne) {
  mtl_test::TempDir dir("robust_term");
  write_csv(dir.file("d.csv"));
  const mtl::TrainSummary whole = train_yaml(csv_yaml(dir.file("d.csv"), dir.file("whole"), 3));
  const std::string run_dir = dir.file("cut");
  AtStep term(7, [] { std::raise(SIGTERM); });
  const mtl::TrainSummary cut = train_yaml(csv_yaml(dir.file("d.csv"), run_dir, 3), "", {&term});
  EXPECT_TRUE(cut.interrupted);
  EXPECT_EQ(cut.steps, 7);
  EXPECT_EQ(mtl::last_stop_signal(), SIGTERM);
  mtl::Run probe = mtl::assemble(mtl::Config::from_string(csv_yaml(dir.file("d.csv"), run_dir, 3), "robust.yaml"));
  EXPECT_EQ(mtl::load_checkpoint(run_dir + "/checkpoint.pt", {probe.model.get()}).step, 7);
  const mtl::TrainSummary resumed = train_yaml(csv_yaml(dir.file("d.csv"), run_dir, 3), run_dir);
  ASSERT_FALSE(resumed.interrupted);
  EXPECT_EQ(resumed.final_eval.flat(), whole.final_eval.flat());  // bitwise
  EXPECT_EQ(log_without_timings(run_dir + "/metrics.jsonl"), log_without_timings(dir.file("whole/metrics.jsonl")));
}

// Through the CLI, as a scheduler sends it: to `mtl train` itself, and to the launcher of `--nproc 2`, which
// passes it on to its ranks. Exit status 143, the resume hint, and a checkpoint that resumes.
TEST(Robustness, SigtermToTheCliAndToTheLauncherExits143WithACheckpoint) {
  if (!fs::exists(mtl_cli())) GTEST_SKIP() << "CLI not built";
  mtl_test::TempDir dir("robust_cli_term");
  write_csv(dir.file("d.csv"));
  for (const std::string nproc : {"", " --nproc 2"}) {
    const std::string run_dir = dir.file(nproc.empty() ? "one" : "two");
    mtl_test::write_file(dir.file("c.yaml"), csv_yaml(dir.file("d.csv"), run_dir, 100000));
    // Started in the background; SIGTERM once the log shows step 3.
    mtl_test::write_file(dir.file("term.sh"),
                         mtl_cli() + " train " + dir.file("c.yaml") + nproc + " > " + dir.file("out.txt") +
                             " 2>&1 &\npid=$!\nfor i in $(seq 600); do grep -q '\"step\":3,' " + run_dir +
                             "/metrics.jsonl 2>/dev/null && break; sleep 0.05; done\nkill -TERM $pid\nwait $pid\n"
                             "echo \"rc=$?\"\n");
    mtl_test::ShellRun r = mtl_test::run_shell("bash " + dir.file("term.sh"));
    const std::string out = mtl_test::read_file(dir.file("out.txt"));
    EXPECT_NE(r.out.find("rc=143"), std::string::npos) << nproc << r.out << out;
    EXPECT_NE(out.find("stopped by SIGTERM: checkpoint written to " + run_dir + "/checkpoint.pt; continue with --resume " +
                       run_dir),
              std::string::npos)
        << out;
    mtl::Run probe = mtl::assemble(mtl::Config::from_string(csv_yaml(dir.file("d.csv"), run_dir, 1), "robust.yaml"));
    EXPECT_GE(mtl::load_checkpoint(run_dir + "/checkpoint.pt", {probe.model.get()}).step, 3);
  }
}

TEST(Robustness, ARunThatDiesMidWayResumesToTheUninterruptedLogAndResult) {
  mtl_test::TempDir dir("robust_crash");
  write_csv(dir.file("d.csv"));
  const mtl::TrainSummary whole = train_yaml(csv_yaml(dir.file("d.csv"), dir.file("whole"), 3));
  const std::string run_dir = dir.file("crash");
  // Dies at step 8: its checkpoint is step 6's (checkpoint_interval 3), the log already has steps 7 and 8, and
  // the process was writing a line and a new checkpoint when it died.
  AtStep die(8, [] { throw Died(); });
  EXPECT_THROW(train_yaml(csv_yaml(dir.file("d.csv"), run_dir, 3), "", {&die}), Died);
  {
    std::ofstream log(run_dir + "/metrics.jsonl", std::ios::app);
    log << "{\"event\":\"train\",\"step\":9,\"ep";  // half a line
  }
  mtl_test::write_file(run_dir + "/checkpoint.pt.tmp.4242.0", "half a checkpoint");
  ASSERT_NE(mtl_test::read_file(run_dir + "/metrics.jsonl").find("\"step\":8"), std::string::npos);
  const mtl::TrainSummary resumed = train_yaml(csv_yaml(dir.file("d.csv"), run_dir, 3), run_dir);
  EXPECT_EQ(resumed.final_eval.flat(), whole.final_eval.flat());
  EXPECT_EQ(log_without_timings(run_dir + "/metrics.jsonl"), log_without_timings(dir.file("whole/metrics.jsonl")));
  EXPECT_FALSE(fs::exists(run_dir + "/checkpoint.pt.tmp.4242.0"));  // the dead process's temporary
}

// The two ends the crash trials found: a run that dies after its last step's checkpoint but before the epoch
// ends (the resumed run ends the epoch: epoch line, evaluation), and one that dies after its final checkpoint
// (resuming it trains nothing and writes no second evaluation line).
TEST(Robustness, RunsKilledAtTheirVeryEndResumeToTheUninterruptedLog) {
  mtl_test::TempDir dir("robust_end");
  write_csv(dir.file("d.csv"));
  const mtl::TrainSummary whole = train_yaml(csv_yaml(dir.file("d.csv"), dir.file("whole"), 3));
  const std::string expected = log_without_timings(dir.file("whole/metrics.jsonl"));
  const std::string run_dir = dir.file("last_step");
  AtStep die(15, [] { throw Died(); });  // step 15 of 15: its checkpoint (interval 3) is written, the epoch not ended
  EXPECT_THROW(train_yaml(csv_yaml(dir.file("d.csv"), run_dir, 3), "", {&die}), Died);
  const mtl::TrainSummary ended = train_yaml(csv_yaml(dir.file("d.csv"), run_dir, 3), run_dir);
  EXPECT_EQ(ended.final_eval.flat(), whole.final_eval.flat());
  EXPECT_EQ(log_without_timings(run_dir + "/metrics.jsonl"), expected);
  // Resuming a finished run (as after a kill right after its final checkpoint).
  const mtl::TrainSummary again = train_yaml(csv_yaml(dir.file("d.csv"), dir.file("whole"), 3), dir.file("whole"));
  EXPECT_EQ(again.final_eval.flat(), whole.final_eval.flat());  // evaluated again for the result...
  EXPECT_EQ(log_without_timings(dir.file("whole/metrics.jsonl")), expected);  // ...but not logged twice
}

TEST(Robustness, TruncateLogForResumeCutsToTheCheckpointAndDropsAHalfLine) {
  mtl_test::TempDir dir("robust_log");
  const std::string path = dir.file("m.jsonl");
  mtl_test::write_file(path, "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n{\"d\"");
  mtl::truncate_log_for_resume(path, -1);  // unknown size: only the unfinished line goes
  EXPECT_EQ(mtl_test::read_file(path), "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n");
  mtl::truncate_log_for_resume(path, 16);  // the size a checkpoint recorded
  EXPECT_EQ(mtl_test::read_file(path), "{\"a\":1}\n{\"b\":2}\n");
  mtl::truncate_log_for_resume(path, 100);  // never grows
  EXPECT_EQ(mtl_test::read_file(path), "{\"a\":1}\n{\"b\":2}\n");
  mtl::truncate_log_for_resume(dir.file("missing.jsonl"), 5);
  EXPECT_FALSE(fs::exists(dir.file("missing.jsonl")));
  // A checkpoint records the log's size: a run resumed from it drops what came after.
  mtl::MetricsLog log(path);
  EXPECT_EQ(log.bytes(), 16);
  log.write("train", 1, 0, {{"x", 1.0}});
  EXPECT_EQ(log.bytes(), static_cast<int64_t>(fs::file_size(path)));
}

TEST(Robustness, ARunDirectoryHasOneWriter) {
  mtl_test::TempDir dir("robust_lock");
  write_csv(dir.file("d.csv"));
  const std::string run_dir = dir.file("run");
  train_yaml(csv_yaml(dir.file("d.csv"), run_dir, 1));
  std::optional<mtl::DirLock> held = mtl::DirLock::try_lock(run_dir);
  ASSERT_TRUE(held);
  EXPECT_FALSE(mtl::DirLock::try_lock(run_dir));  // a second holder (here: another open file) is refused
  EXPECT_EQ(mtl::DirLock::owner(run_dir), "process " + std::to_string(::getpid()));
  // Another process: resuming the directory is an error; a fresh run takes the next free directory.
  mtl_test::write_file(dir.file("c.yaml"), csv_yaml(dir.file("d.csv"), run_dir, 2));
  mtl_test::ShellRun resume = mtl_test::run_shell(mtl_cli() + " train -q --resume " + run_dir + " " + dir.file("c.yaml"));
  EXPECT_EQ(resume.code, 2);
  expect_one_line(resume.out);
  EXPECT_NE(resume.out.find(run_dir + ": run directory in use: process " + std::to_string(::getpid()) +
                            " is training in it"),
            std::string::npos)
      << resume.out;
  mtl_test::ShellRun fresh = mtl_test::run_shell(mtl_cli() + " train -q " + dir.file("c.yaml"));
  EXPECT_EQ(fresh.code, 0) << fresh.out;
  EXPECT_NE(fresh.out.find("run directory: " + run_dir + "-2"), std::string::npos) << fresh.out;
  held.reset();  // released: the directory can be resumed again
  EXPECT_EQ(mtl_test::run_shell(mtl_cli() + " train -q --resume " + run_dir + " " + dir.file("c.yaml")).code, 0);
}

TEST(Robustness, ANonFiniteStepStopsTheRunBeforeTheUpdate) {
  mtl_test::TempDir dir("robust_nan_stop");
  write_csv(dir.file("d.csv"), /*bad_row=*/5);
  const std::string run_dir = dir.file("run");
  mtl::Run run = mtl::assemble(mtl::Config::from_string(csv_yaml(dir.file("d.csv"), run_dir, 3), "robust.yaml"));
  EXPECT_MTL_ERROR(mtl::train(run, mtl::TrainRunOptions{"", false}), "robust.yaml", "step ", "task 'a': loss is ",
                   "stopped before the optimizer step (trainer.on_nonfinite: stop)");
  for (const auto& p : run.model->parameters()) EXPECT_TRUE(at::isfinite(p).all().item<bool>());
  // Through the CLI: one line naming the last good checkpoint, exit 2, and that checkpoint has finite weights.
  write_csv(dir.file("late.csv"), /*bad_row=*/5);
  mtl_test::write_file(dir.file("c.yaml"), csv_yaml(dir.file("late.csv"), dir.file("cli"), 3));
  mtl_test::ShellRun r = mtl_test::run_shell(mtl_cli() + " train -q " + dir.file("c.yaml"));
  EXPECT_EQ(r.code, 2);
  const std::string line = r.out.substr(r.out.rfind("mtl: error:"));
  expect_one_line(line);
  EXPECT_NE(line.find("task 'a': loss is"), std::string::npos) << line;
  const bool has_checkpoint = fs::exists(dir.file("cli/checkpoint.pt"));
  EXPECT_NE(line.find(has_checkpoint ? "the last good checkpoint is " + dir.file("cli/checkpoint.pt") + " (step "
                                     : "no checkpoint was written yet"),
            std::string::npos)
      << line;
  if (has_checkpoint)
    for (const auto& [name, t] : mtl::read_checkpoint_model_tensors(dir.file("cli/checkpoint.pt")))
      EXPECT_TRUE(at::isfinite(t).all().item<bool>()) << name;
}

TEST(Robustness, SkipDropsTheBadStepsAndStopsAfterMaxSkipped) {
  mtl_test::TempDir dir("robust_nan_skip");
  write_csv(dir.file("d.csv"), /*bad_row=*/5);
  const std::string run_dir = dir.file("run");
  write_csv(dir.file("clean.csv"));
  std::string yaml = csv_yaml(dir.file("d.csv"), run_dir, 3, ", on_nonfinite: skip, max_skipped: 2");
  yaml.replace(yaml.find("test: " + dir.file("d.csv")), 6 + dir.file("d.csv").size(), "test: " + dir.file("clean.csv"));
  const mtl::TrainSummary s = train_yaml(yaml);
  EXPECT_EQ(s.skipped_steps, 3);  // the bad row's batch of each epoch
  EXPECT_EQ(s.steps, 15);
  for (const auto& [key, v] : s.final_eval.flat()) EXPECT_TRUE(std::isfinite(v)) << key;
  const std::string log = mtl_test::read_file(run_dir + "/metrics.jsonl");
  size_t skipped_lines = 0;
  for (size_t p = log.find("\"event\":\"skipped\""); p != std::string::npos; p = log.find("\"event\":\"skipped\"", p + 1))
    ++skipped_lines;
  EXPECT_EQ(skipped_lines, 3u);
  for (const auto& [name, t] : mtl::read_checkpoint_model_tensors(run_dir + "/checkpoint.pt"))
    EXPECT_TRUE(at::isfinite(t).all().item<bool>()) << name;
  // Every batch bad: stops after max_skipped consecutive skips.
  std::string csv = "x1,x2,a,b\n";
  for (int i = 0; i < 16; ++i) csv += "1e39,1,0,1\n";
  mtl_test::write_file(dir.file("all.csv"), csv);
  mtl::Run all = mtl::assemble(mtl::Config::from_string(
      csv_yaml(dir.file("all.csv"), dir.file("all"), 3, ", on_nonfinite: skip, max_skipped: 2"), "robust.yaml"));
  EXPECT_MTL_ERROR(mtl::train(all, mtl::TrainRunOptions{"", false}), "step 2: task 'a': loss is",
                   "stopped after 2 consecutive skipped steps (trainer.max_skipped: 2)");
  // Bad settings.
  EXPECT_MTL_ERROR(mtl::parse_run_config(mtl::Config::from_string(
                       csv_yaml(dir.file("d.csv"), run_dir, 1, ", on_nonfinite: ignore"), "robust.yaml")),
                   "trainer.on_nonfinite", "ignore");
  EXPECT_MTL_ERROR(mtl::parse_run_config(mtl::Config::from_string(
                       csv_yaml(dir.file("d.csv"), run_dir, 1, ", on_nonfinite: skip") + "engine: {mode: async}\n" +
                           "optimizer: {type: sgd}\n",
                       "robust.yaml")),
                   "on_nonfinite: skip needs engine.mode sync");
}

TEST(Robustness, ASkippedStepLeavesWeightsAndWeightingStateAsTheyWere) {
  mtl_test::TempDir dir("robust_nan_state");
  write_csv(dir.file("d.csv"), /*bad_row=*/0);
  mtl::Run run = mtl::assemble(mtl::Config::from_string(
      csv_yaml(dir.file("d.csv"), dir.file("run"), 1, ", on_nonfinite: skip"), "robust.yaml"));
  mtl::ParamGroups groups = mtl::build_param_groups(run.config.optimizer, run.config.scheduler, *run.model,
                                                    *run.weighting);
  ASSERT_TRUE(run.config.engine.keep_state_on_skip);
  auto engine = mtl::make_engine(run.model, run.tasks, *run.weighting, groups, run.config.engine, run.make_model);
  auto data = run.data->open(mtl::Split::kTrain);
  auto state_bytes = [&] {
    torch::serialize::OutputArchive a;
    run.weighting->save(a);
    std::ostringstream out;
    a.save_to(out);
    return out.str();
  };
  auto weights = [&] {
    std::vector<at::Tensor> w;
    for (const auto& p : run.model->parameters()) w.push_back(p.detach().clone());
    return w;
  };
  const mtl::StepResult good = engine->step(data->batch({8, 9, 10, 11, 12, 13, 14, 15}), {0, 0, {}}).at(0);
  ASSERT_TRUE(good.nonfinite.empty()) << good.nonfinite;
  const std::string state = state_bytes();  // gradvac's running targets after one step
  const std::vector<at::Tensor> before = weights();
  const mtl::StepResult bad = engine->step(data->batch({0, 1, 2, 3, 4, 5, 6, 7}), {1, 0, {}}).at(0);
  EXPECT_NE(bad.nonfinite.find("loss is"), std::string::npos) << bad.nonfinite;
  const std::vector<at::Tensor> after = weights();
  for (size_t i = 0; i < before.size(); ++i) EXPECT_TRUE(before[i].equal(after[i])) << i;
  EXPECT_EQ(state_bytes(), state);
  // Without keep_state_on_skip the same bad step does change gradvac's state (what the snapshot undoes).
  mtl::EngineOptions plain = run.config.engine;
  plain.keep_state_on_skip = false;
  auto unguarded = mtl::make_engine(run.model, run.tasks, *run.weighting, groups, plain, run.make_model);
  EXPECT_FALSE(unguarded->step(data->batch({0, 1, 2, 3, 4, 5, 6, 7}), {1, 0, {}}).at(0).nonfinite.empty());
  EXPECT_NE(state_bytes(), state);
  // And a finite loss with a non-finite gradient is named by its parameter.
  mtl::StepResult r;
  r.losses = {1.0, 1.0};
  r.present = {true, true};
  auto named = run.model->named_parameters();
  named[0].value().mutable_grad() = at::full_like(named[0].value(), std::numeric_limits<float>::infinity());
  EXPECT_EQ(mtl::find_nonfinite(r, run.tasks, named, groups.optimizer()),
            "gradient of '" + named.keys()[0] + "' has inf");
}

TEST(Robustness, AFullDiskStopsTheMetricsLogWithAnError) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  mtl::MetricsLog log("/dev/full");  // every write: ENOSPC
  EXPECT_MTL_ERROR(log.write("train", 1, 0, {{"x", 1.0}}), "/dev/full", "cannot write the metrics log",
                   "No space left on device");
}

TEST(Robustness, AWriteErrorGivesOneLineAndKeepsThePreviousCheckpoint) {
  if (!fs::exists(mtl_cli())) GTEST_SKIP() << "CLI not built";
  mtl_test::TempDir dir("robust_disk");
  write_csv(dir.file("d.csv"));
  const std::string run_dir = dir.file("run");
  // A model whose checkpoint (about 3 MB: weights and Adam's two moments) is larger than the file size limit
  // below (1 MB) while the other files stay under it.
  auto yaml = [&](int epochs) {
    std::string y = csv_yaml(dir.file("d.csv"), run_dir, epochs, "", "ew");
    y.replace(y.find("hidden: [16]"), 12, "hidden: [512, 512]");
    y.replace(y.find("checkpoint_interval: 3"), 22, "checkpoint_interval: 0");
    return y;
  };
  mtl_test::write_file(dir.file("c1.yaml"), yaml(1));
  mtl_test::write_file(dir.file("c2.yaml"), yaml(2));
  ASSERT_EQ(mtl_test::run_shell(mtl_cli() + " train -q " + dir.file("c1.yaml")).code, 0);
  const std::string saved = mtl_test::read_file(run_dir + "/checkpoint.pt");
  ASSERT_GT(saved.size(), 2u << 20);
  mtl_test::ShellRun limited =
      mtl_test::run_shell("ulimit -f 1024 && " + mtl_cli() + " train -q --resume " + run_dir + " " + dir.file("c2.yaml"));
  EXPECT_EQ(limited.code, 2);
  expect_one_line(limited.out);
  EXPECT_NE(limited.out.find(run_dir + "/checkpoint.pt: cannot write checkpoint"), std::string::npos) << limited.out;
  EXPECT_EQ(mtl_test::read_file(run_dir + "/checkpoint.pt"), saved);  // untouched
  for (const auto& e : fs::directory_iterator(run_dir))
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();  // no temporary left
  // A limit below every file's size: whichever write comes first fails with one line naming its file.
  mtl_test::ShellRun tiny =
      mtl_test::run_shell("ulimit -f 1 && " + mtl_cli() + " train -q --resume " + run_dir + " " + dir.file("c2.yaml"));
  EXPECT_EQ(tiny.code, 2);
  EXPECT_NE(expect_one_line(tiny.out).find("File too large"), std::string::npos) << tiny.out;
  EXPECT_EQ(mtl_test::read_file(run_dir + "/checkpoint.pt"), saved);
  // Without the limit the run resumes from the checkpoint the failed attempts kept.
  mtl_test::ShellRun again = mtl_test::run_shell(mtl_cli() + " train -q --resume " + run_dir + " " + dir.file("c2.yaml"));
  EXPECT_EQ(again.code, 0) << again.out;
}
