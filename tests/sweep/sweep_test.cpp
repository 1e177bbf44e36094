// mtl sweep (mtl/sweep/sweep.h): grid parsing and its errors, the runs of a grid, the aggregate table against
// hand-computed means and standard deviations, and a real 2-method x 2-seed MultiFashion sweep through the CLI that
// is interrupted (SIGINT) after its first finished run and started again: finished runs are not trained again, the
// stopped one resumes, and the summary has every combination.
#include "mtl/sweep/sweep.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "test_util.h"

namespace fs = std::filesystem;

TEST(Sweep, ParsesAxesWithBracketsAndRejectsBadOnes) {
  mtl::SweepAxis a = mtl::parse_sweep_axis("weighting.method=ew, pcgrad ,mgda", "--grid");
  EXPECT_EQ(a.key, "weighting.method");
  EXPECT_EQ(a.values, (std::vector<std::string>{"ew", "pcgrad", "mgda"}));
  a = mtl::parse_sweep_axis("model.architecture={type: mmoe, experts: 4},hps,[1, 2]", "--grid");
  EXPECT_EQ(a.values, (std::vector<std::string>{"{type: mmoe, experts: 4}", "hps", "[1, 2]"}));
  EXPECT_MTL_ERROR(mtl::parse_sweep_axis("weighting.method", "--grid x"), "--grid x", "KEY=V1,V2");
  EXPECT_MTL_ERROR(mtl::parse_sweep_axis("=ew", "--grid"), "KEY=V1,V2");
  EXPECT_MTL_ERROR(mtl::parse_sweep_axis("weighting.method=", "--grid"), "empty grid", "weighting.method");
  EXPECT_MTL_ERROR(mtl::parse_sweep_axis("weighting.method=ew,,mgda", "--grid"), "empty value");
  EXPECT_MTL_ERROR(mtl::parse_sweep_axis("weighting.method=ew,ew", "--grid"), "appears twice");
  EXPECT_MTL_ERROR(mtl::parse_sweep_axis("trainer.seed=1,2", "--grid"), "--seeds");
}

TEST(Sweep, RunsAreTheGridTimesTheSeeds) {
  auto runs = mtl::sweep_runs({mtl::parse_sweep_axis("weighting.method=ew,pcgrad", "g"),
                               mtl::parse_sweep_axis("optimizer.lr=0.1,0.01", "g")},
                              2, 5, "sw");
  ASSERT_EQ(runs.size(), 8u);
  EXPECT_EQ(runs[0].combination, "weighting.method=ew,optimizer.lr=0.1");
  EXPECT_EQ(runs[0].seed, 5);
  EXPECT_EQ(runs[1].seed, 6);
  EXPECT_EQ(runs[2].combination, "weighting.method=ew,optimizer.lr=0.01");
  EXPECT_EQ(runs[7].combination, "weighting.method=pcgrad,optimizer.lr=0.01");
  EXPECT_EQ(runs[0].run_dir, "sw/weighting.method=ew,optimizer.lr=0.1/seed5");
  // Values that are not file-name safe, and two that look alike on disk, still get distinct directories.
  runs = mtl::sweep_runs({mtl::parse_sweep_axis("model.architecture={type: a},{type/a}", "g")}, 1, 0, "sw");
  EXPECT_EQ(runs[0].run_dir, "sw/model.architecture=_type__a_/seed0");
  EXPECT_NE(runs[0].run_dir, runs[1].run_dir);
  EXPECT_EQ(mtl::sweep_runs({}, 3, 0, "sw")[2].run_dir, "sw/default/seed2");
}

TEST(Sweep, TableShowsMeanAndSampleStandardDeviation) {
  // 0.70 and 0.80: mean 0.75, sample std sqrt(0.005) = 0.0707; delta-m -1 and -3: -2.00% +- 1.41.
  std::vector<mtl::SweepStat> ew{{"left/accuracy", 0.75, std::sqrt(0.005), 2}, {"delta_m", -2.0, std::sqrt(2.0), 2}};
  std::vector<mtl::SweepStat> one{{"left/accuracy", 0.5, std::nan(""), 1}, {"delta_m", 1.0, std::nan(""), 1}};
  std::string md = mtl::sweep_table({"weighting.method=ew", "weighting.method=mgda"}, {ew, one});
  EXPECT_EQ(md,
            "| combination | runs | left/accuracy | delta_m |\n|---|---|---|---|\n"
            "| weighting.method=ew | 2 | 0.7500 ± 0.0707 | -2.00% ± 1.41 |\n"
            "| weighting.method=mgda | 1 | 0.5000 | +1.00% |\n");
}

namespace {

std::string mtl_cli() { return std::string(MTL_BINARY_DIR) + "/mtl"; }

size_t finished_runs(const std::string& state) {
  if (!fs::exists(state)) return 0;
  try {
    return nlohmann::json::parse(mtl_test::read_file(state))["finished"].size();
  } catch (...) {
    return 0;  // being replaced
  }
}

// Whether the process runs: /proc/<pid>/stat exists and is not a zombie's (an orphan that no init reaps stays one,
// and `kill -0` still succeeds on it).
bool alive(const std::string& pid) {
  std::ifstream in("/proc/" + pid.substr(0, pid.find_first_of(" \n")) + "/stat");
  std::string id, name, state;
  if (!(in >> id >> name >> state)) return false;
  return state != "Z" && state != "X";
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

}  // namespace

TEST(Sweep, InterruptedSweepSkipsFinishedRunsAndAggregates) {
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  if (!fs::exists(mtl_cli())) GTEST_SKIP() << "CLI not built";
  mtl_test::TempDir dir("sweep");
  mtl_test::write_file(dir.file("mf.yaml"),
                       "data: {type: multi_fashion, train_size: 3200, test_size: 200, cache_dir: '" + dir.file("cache") +
                           "'}\nmodel: {backbone: lenet}\ntasks: {left: {label: left}, right: {label: right}}\n"
                           "trainer: {epochs: 2, batch_size: 64, threads: 2, checkpoint_interval: 3, run_dir: '" +
                           dir.file("runs/mf") + "'}\n");
  const std::string cmd = mtl_cli() + " sweep " + dir.file("mf.yaml") +
                          " --grid weighting.method=ew,pcgrad --seeds 2 --dir " + dir.file("sw") + " -q";
  // Start it in the background and stop it (Ctrl-C) once its first run is recorded as finished.
  mtl_test::run_shell("(" + cmd + " > " + dir.file("first.log") + " 2>&1 & echo $! > " + dir.file("pid") + ")");
  const std::string pid = mtl_test::read_file(dir.file("pid"));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  while (finished_runs(dir.file("sw/sweep.json")) == 0 && std::chrono::steady_clock::now() < deadline &&
         alive(pid))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  mtl_test::run_shell("kill -INT " + pid);
  while (alive(pid) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const size_t finished = finished_runs(dir.file("sw/sweep.json"));
  const std::string first_log = mtl_test::read_file(dir.file("first.log"));
  ASSERT_GE(finished, 1u) << first_log;
  ASSERT_LT(finished, 4u) << first_log;  // stopped before the end
  EXPECT_NE(first_log.find("mtl sweep: stopped; run the same command again"), std::string::npos) << first_log;
  const std::string first_run = dir.file("sw/weighting.method=ew/seed0/metrics.jsonl");
  const std::string first_metrics = mtl_test::read_file(first_run);

  mtl_test::ShellRun again = mtl_test::run_shell(cmd);
  ASSERT_EQ(again.code, 0) << again.out;
  EXPECT_EQ(count(again.out, "mtl sweep: run "), 4 - finished) << again.out;  // finished runs are skipped
  EXPECT_EQ(count(again.out, "run 1/4"), 0u) << again.out;
  EXPECT_EQ(mtl_test::read_file(first_run), first_metrics);  // not trained again
  EXPECT_EQ(finished_runs(dir.file("sw/sweep.json")), 4u);
  for (const char* f : {"summary.md", "summary.json", "baselines/seed0.baselines/baselines.json",
                        "baselines/seed1.baselines/baselines.json"})
    EXPECT_TRUE(fs::exists(dir.file("sw/") + f)) << f;
  const std::string md = mtl_test::read_file(dir.file("sw/summary.md"));
  EXPECT_NE(md.find("| weighting.method=ew | 2 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| weighting.method=pcgrad | 2 |"), std::string::npos) << md;
  EXPECT_NE(md.find("delta_m"), std::string::npos) << md;
  for (const char* row : {"| weighting.method=ew |", "| weighting.method=pcgrad |"}) {
    const size_t at = md.find(row);
    ASSERT_NE(at, std::string::npos) << md;
    const std::string line = md.substr(at, md.find('\n', at) - at);
    EXPECT_GE(count(line, " ± "), 3u) << line;  // each task's metrics and delta-m, over 2 seeds
    EXPECT_EQ(line.find("|  |"), std::string::npos) << line;
  }
  // The JSON's numbers are those of the runs' own final evaluations.
  auto j = nlohmann::json::parse(mtl_test::read_file(dir.file("sw/summary.json")));
  ASSERT_EQ(j["combinations"].size(), 2u);
  double sum = 0;
  for (const auto& run : j["combinations"][0]["runs"]) {
    std::string last_eval;
    std::istringstream in(mtl_test::read_file(run.get<std::string>() + "/metrics.jsonl"));
    for (std::string line; std::getline(in, line);)
      if (line.find("\"event\":\"eval\"") != std::string::npos) last_eval = line;
    sum += nlohmann::json::parse(last_eval)["left/accuracy"].get<double>();
  }
  EXPECT_NEAR(j["combinations"][0]["metrics"]["left/accuracy"]["mean"].get<double>(), sum / 2, 1e-12);
}

TEST(Sweep, BadInputGivesOneLineErrors) {
  if (!fs::exists(mtl_cli())) GTEST_SKIP() << "CLI not built";
  mtl_test::TempDir dir("sweep_bad");
  mtl_test::write_file(dir.file("c.yaml"), "data: {type: multi_fashion, train_size: 200, test_size: 50, cache_dir: '" +
                                               dir.file("cache") + "'}\nmodel: {backbone: lenet}\n"
                                           "tasks: {left: {label: left}, right: {label: right}}\n"
                                           "trainer: {run_dir: '" + dir.file("r") + "'}\n");
  struct Bad {
    std::string args, expect;
  };
  for (const Bad& b : {Bad{"--grid weighting.metod=ew,pcgrad", "metod"}, Bad{"--grid weighting.method=", "empty grid"},
                       Bad{"", "nothing to sweep"}, Bad{"--grid weighting.method=ew,pcgrd", "pcgrd"},
                       Bad{"--grid weighting.method", "KEY=V1,V2"}}) {
    mtl_test::ShellRun r = mtl_test::run_shell(mtl_cli() + " sweep " + dir.file("c.yaml") + " " + b.args + " --dir " + dir.file("sw"));
    EXPECT_EQ(r.code, 2) << b.args << ": " << r.out;
    EXPECT_EQ(count(r.out, "\n"), 1u) << b.args << ": " << r.out;
    EXPECT_NE(r.out.find(b.expect), std::string::npos) << b.args << ": " << r.out;
  }
  EXPECT_FALSE(fs::exists(dir.file("sw/weighting.method=ew")));  // nothing trained
}

TEST(Sweep, TheConfigsSweepSectionSetsGridSeedsAndDirectory) {
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  if (!fs::exists(mtl_cli())) GTEST_SKIP() << "CLI not built";
  mtl_test::TempDir dir("sweep_yaml");
  const std::string body = "data: {type: multi_fashion, train_size: 256, test_size: 64, cache_dir: '" + dir.file("cache") +
                           "'}\nmodel: {backbone: lenet}\ntasks: {left: {label: left}, right: {label: right}}\n"
                           "trainer: {epochs: 1, batch_size: 64, threads: 1, run_dir: '" + dir.file("r") + "'}\n";
  mtl_test::write_file(dir.file("ok.yaml"), body + "sweep: {grid: [\"weighting.method=ew,dwa\"], seeds: 2, dir: '" +
                                                dir.file("sw") + "'}\n");
  mtl_test::ShellRun r = mtl_test::run_shell(mtl_cli() + " sweep " + dir.file("ok.yaml") + " -q --no-baselines");
  ASSERT_EQ(r.code, 0) << r.out;
  for (const char* run : {"weighting.method=ew/seed0", "weighting.method=ew/seed1", "weighting.method=dwa/seed0",
                          "weighting.method=dwa/seed1"})
    EXPECT_TRUE(fs::exists(dir.file("sw/") + run + "/checkpoint.pt")) << run;
  EXPECT_NE(r.out.find("| weighting.method=dwa | 2 |"), std::string::npos) << r.out;
  // The other commands accept the section (and ignore it): inspect builds the whole run, as train does.
  EXPECT_EQ(mtl_test::run_shell(mtl_cli() + " inspect " + dir.file("ok.yaml")).code, 0);
  // A bad axis in the file names the file, line and key.
  mtl_test::write_file(dir.file("bad.yaml"), body + "sweep: {grid: [\"weighting.method\"]}\n");
  r = mtl_test::run_shell(mtl_cli() + " sweep " + dir.file("bad.yaml"));
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("bad.yaml:5"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(sweep.grid)"), std::string::npos) << r.out;
  mtl_test::write_file(dir.file("zero.yaml"), body + "sweep: {seeds: 0}\n");
  r = mtl_test::run_shell(mtl_cli() + " sweep " + dir.file("zero.yaml"));
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("sweep.seeds"), std::string::npos) << r.out;
}
