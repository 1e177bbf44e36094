// mtl report (mtl/report): the run-log reader's errors, chart alignment and thinning, config differences, the
// HTML's escaping and self-containment, the CLI's one-line errors, and the pages opened in headless Chromium by
// an independent checker (tests/report/report_browser.py: screenshot, no console errors, every chart's canvas
// has pixels in its series' colours, no network request) for one real run and a three-run comparison.
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "mtl/report/assets.h"
#include "mtl/report/charts.h"
#include "mtl/report/html.h"
#include "mtl/report/run_log.h"
#include "mtl/run/assembler.h"
#include "mtl/run/trainer.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {

std::string run_dir(mtl_test::TempDir& dir, const std::string& name, const std::string& metrics,
                    const std::string& config = "") {
  const std::string d = dir.file(name);
  fs::create_directories(d);
  mtl_test::write_file(d + "/metrics.jsonl", metrics);
  if (!config.empty()) mtl_test::write_file(d + "/config.yaml", config);
  return d;
}

const char* kLog =
    "{\"event\":\"train\",\"step\":1,\"epoch\":0,\"lr\":0.1,\"a/loss\":2.0,\"a/weight\":1,\"b/loss\":3.0,\"b/weight\":1}\n"
    "{\"event\":\"train\",\"step\":3,\"epoch\":0,\"lr\":0.1,\"a/loss\":1.5,\"a/weight\":1,\"b/loss\":null,\"b/weight\":1}\n"
    "{\"event\":\"epoch\",\"step\":3,\"epoch\":0,\"a/loss\":1.7,\"b/loss\":2.5,\"seconds\":2.5,\"examples_per_second\":100}\n"
    "{\"event\":\"eval\",\"step\":3,\"epoch\":0,\"a/loss\":1.6,\"a/accuracy\":0.5,\"b/loss\":2.4,\"b/mae\":0.7,\"delta_m\":-3.5}\n";

}  // namespace

TEST(RunLog, ReadsLinesTasksAndNulls) {
  mtl_test::TempDir dir("report_log");
  mtl::RunLog run = mtl::read_run_log(run_dir(dir, "r1", kLog, "trainer: {epochs: 1}\n"));
  EXPECT_EQ(run.name, "r1");
  EXPECT_EQ(run.lines.size(), 4u);
  EXPECT_EQ(run.tasks(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(run.lines_of("train").size(), 2u);
  EXPECT_TRUE(std::isnan(run.lines[1].get("b/loss")));
  EXPECT_DOUBLE_EQ(run.lines[3].get("delta_m"), -3.5);
  EXPECT_EQ(run.config, "trainer: {epochs: 1}\n");
  // A last line still being written (no newline) is ignored.
  run = mtl::read_run_log(run_dir(dir, "r2", std::string(kLog) + "{\"event\":\"tra"));
  EXPECT_EQ(run.lines.size(), 4u);
}

TEST(RunLog, BadInputNamesTheDirectoryOrLine) {
  mtl_test::TempDir dir("report_bad");
  EXPECT_MTL_ERROR(mtl::read_run_log(dir.file("absent")), "absent", "no such run directory");
  fs::create_directories(dir.file("empty_dir"));
  EXPECT_MTL_ERROR(mtl::read_run_log(dir.file("empty_dir")), "empty_dir", "no metrics.jsonl");
  EXPECT_MTL_ERROR(mtl::read_run_log(run_dir(dir, "blank", "")), "metrics.jsonl", "no metrics yet");
  EXPECT_MTL_ERROR(mtl::read_run_log(run_dir(dir, "corrupt", "{\"event\":\"train\",\"step\":1}\n{oops\n{}\n")),
                   "metrics.jsonl:2", "not a JSON line");
  EXPECT_MTL_ERROR(mtl::read_run_log(run_dir(dir, "noevent", "{\"step\":1}\n")), "metrics.jsonl:1", "event");
  EXPECT_MTL_ERROR(mtl::read_run_log(run_dir(dir, "array", "[1,2]\n")), "metrics.jsonl:1", "JSON object");
}

TEST(ReportCharts, OneRunPlotsTasksTogetherSeveralRunsPerRun) {
  mtl_test::TempDir dir("report_charts");
  mtl::RunLog a = mtl::read_run_log(run_dir(dir, "a", kLog));
  auto charts = mtl::report_charts({a});
  std::vector<std::string> titles;
  for (const auto& c : charts) titles.push_back(c.title);
  EXPECT_EQ(titles, (std::vector<std::string>{"training loss", "task weight", "learning rate", "test loss", "test accuracy",
                                             "test mae", "delta-m (%)", "examples/s"}));
  const mtl::Chart& loss = charts[0];
  EXPECT_EQ(loss.x, (std::vector<double>{1, 3}));
  ASSERT_EQ(loss.series.size(), 2u);
  EXPECT_EQ(loss.series[0].label, "a");
  EXPECT_EQ(loss.series[0].y, (std::vector<double>{2.0, 1.5}));
  EXPECT_TRUE(std::isnan(loss.series[1].y[1]));  // null in the log: no point
  EXPECT_EQ(charts[4].x_label, "epoch");
  EXPECT_EQ(charts[4].x, (std::vector<double>{1}));

  // A second run logged other steps: the x axis is the union, each run's series has gaps elsewhere.
  mtl::RunLog b = mtl::read_run_log(run_dir(dir, "b",
      "{\"event\":\"train\",\"step\":2,\"epoch\":0,\"lr\":0.1,\"a/loss\":1.0,\"a/weight\":1}\n"));
  charts = mtl::report_charts({a, b});
  EXPECT_EQ(charts[0].x, (std::vector<double>{1, 2, 3}));
  ASSERT_EQ(charts[0].series.size(), 3u);
  EXPECT_EQ(charts[0].series[2].label, "b: a");
  EXPECT_TRUE(std::isnan(charts[0].series[2].y[0]));
  EXPECT_EQ(charts[0].series[2].y[1], 1.0);

  // Long curves are thinned to max_points, keeping the last point.
  std::string many;
  for (int s = 1; s <= 1000; ++s)
    many += "{\"event\":\"train\",\"step\":" + std::to_string(s) + ",\"epoch\":0,\"a/loss\":" + std::to_string(s) + "}\n";
  charts = mtl::report_charts({mtl::read_run_log(run_dir(dir, "long", many))}, 100);
  EXPECT_LE(charts[0].x.size(), 100u);
  EXPECT_EQ(charts[0].x.back(), 1000.0);
  EXPECT_EQ(charts[0].series[0].y.back(), 1000.0);
}

TEST(ReportCharts, DiagnosticsGiveCosineConflictAndNormCharts) {
  mtl_test::TempDir dir("report_diag");
  mtl::RunLog r = mtl::read_run_log(run_dir(dir, "d",
      "{\"event\":\"diagnostics\",\"step\":1,\"epoch\":0,\"a/grad_norm\":2,\"b/grad_norm\":1,\"cosine/a/b\":-0.2,"
      "\"conflict_share\":1,\"combined_norm\":1.5,\"a/weight\":1,\"b/weight\":1,\"representation\":0}\n"));
  auto charts = mtl::report_charts({r});
  ASSERT_EQ(charts.size(), 3u);
  EXPECT_EQ(charts[0].title, "gradient cosine");
  EXPECT_EQ(charts[0].series[0].label, "a x b");
  EXPECT_EQ(charts[0].series[0].y, (std::vector<double>{-0.2}));
  EXPECT_EQ(charts[1].title, "conflict share");
  EXPECT_EQ(charts[2].title, "gradient norm");
  EXPECT_EQ(charts[2].series.back().label, "combined update");
}

TEST(ReportHtml, ConfigDifferences) {
  auto diff = mtl::config_differences({"weighting: {method: ew}\ntrainer: {epochs: 3, seed: 0}\nm: {c: [1, 2]}\n",
                                       "weighting: {method: pcgrad}\ntrainer: {epochs: 3, seed: 1}\nm: {c: [1, 3]}\n",
                                       "weighting: {method: ew}\ntrainer: {epochs: 3}\nm: {c: [1, 2]}\n"});
  ASSERT_EQ(diff.size(), 3u);
  EXPECT_EQ(diff[0].first, "weighting.method");
  EXPECT_EQ(diff[0].second, (std::vector<std::string>{"ew", "pcgrad", "ew"}));
  EXPECT_EQ(diff[1].first, "trainer.seed");
  EXPECT_EQ(diff[1].second, (std::vector<std::string>{"0", "1", ""}));
  EXPECT_EQ(diff[2].first, "m.c");
  EXPECT_EQ(diff[2].second[1], "[1, 3]");
  EXPECT_TRUE(mtl::config_differences({"a: 1\n", "a: 1\n"}).empty());
}

TEST(ReportHtml, SelfContainedAndEscaped) {
  if (*mtl::chart_library().js == '\0') GTEST_SKIP() << "built without uPlot (tools/fetch_uplot.sh)";
  mtl_test::TempDir dir("report_html");
  std::string log = kLog;
  log += "{\"event\":\"train\",\"step\":4,\"epoch\":0,\"</script><b>x/loss\":1}\n";
  mtl::RunLog r = mtl::read_run_log(run_dir(dir, "<i>run&", log, "note: \"</pre><script>alert(1)</script>\"\n"));
  const std::string html = mtl::report_html({r});
  EXPECT_EQ(html.find("<i>run&"), std::string::npos);
  EXPECT_NE(html.find("&lt;i&gt;run&amp;"), std::string::npos);
  EXPECT_EQ(html.find("alert(1)</script>"), std::string::npos);  // the config is escaped
  EXPECT_EQ(html.find("</script><b>x"), std::string::npos);      // so is the data
  for (const char* external : {"src=", "href=", "@import", "url("}) EXPECT_EQ(html.find(external), std::string::npos) << external;
  EXPECT_NE(html.find("uPlot"), std::string::npos);
}

namespace {

// A short real MultiFashion run (Fashion-MNIST from Debian), with gradient diagnostics.
std::string train_run(mtl_test::TempDir& dir, const std::string& name, const std::string& method) {
  std::string yaml = "data: {type: multi_fashion, train_size: 640, test_size: 200, cache_dir: '" + dir.file("cache") +
                     "'}\nmodel: {backbone: lenet}\ntasks: {left: {label: left}, right: {label: right}}\n"
                     "weighting: {method: " + method + "}\ndiagnostics: {every: 2}\n"
                     "trainer: {epochs: 3, batch_size: 64, threads: 2, log_interval: 2, run_dir: '" + dir.file(name) + "'}\n";
  mtl::Run ex = mtl::assemble(mtl::Config::from_string(yaml, name + ".yaml"));
  mtl::train(ex, {"", false});
  return dir.file(name);
}

}  // namespace

TEST(ReportBrowser, ChromiumRendersEveryChartWithoutErrors) {
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  if (*mtl::chart_library().js == '\0') GTEST_SKIP() << "built without uPlot (tools/fetch_uplot.sh)";
  mtl_test::TempDir dir("report_browser");
  const std::string ew = train_run(dir, "ew", "ew");
  const std::string pcgrad = train_run(dir, "pcgrad", "pcgrad");
  const std::string mgda = train_run(dir, "mgda", "mgda");
  struct Page {
    std::string file;
    std::vector<std::string> runs;
  };
  for (const Page& p : {Page{dir.file("single.html"), {ew}}, Page{dir.file("three.html"), {ew, pcgrad, mgda}}}) {
    std::vector<mtl::RunLog> runs;
    for (const auto& d : p.runs) runs.push_back(mtl::read_run_log(d));
    mtl_test::write_file(p.file, mtl::report_html(runs));
    const size_t charts = mtl::report_charts(runs).size();
    EXPECT_EQ(charts, 9u) << p.file;  // loss, weight, lr; test loss, accuracy; 3 diagnostics; examples/s
    mtl_test::ShellRun r = mtl_test::run_shell("/usr/bin/python3 " + mtl_test::source_path("tests/report/report_browser.py") +
                                               " " + p.file + " " + std::to_string(charts) + " " + p.file + ".png");
    if (r.code == 3) GTEST_SKIP() << "headless Chromium is unavailable: " << r.out;
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_TRUE(fs::exists(p.file + ".png")) << r.out;
  }
}

TEST(ReportCli, WritesTheFileAndGivesOneLineErrors) {
  if (!fs::exists(std::string(MTL_BINARY_DIR) + "/mtl")) GTEST_SKIP() << "CLI not built";
  mtl_test::TempDir dir("report_cli");
  const std::string run = run_dir(dir, "r", kLog, "trainer: {epochs: 1}\n");
  const std::string mtl = std::string(MTL_BINARY_DIR) + "/mtl report ";
  mtl_test::ShellRun ok = mtl_test::run_shell(mtl + run + " --output " + dir.file("out.html"));
  if (*mtl::chart_library().js == '\0') {
    EXPECT_EQ(ok.code, 2) << ok.out;
    EXPECT_NE(ok.out.find("fetch_uplot"), std::string::npos) << ok.out;
    return;
  }
  EXPECT_EQ(ok.code, 0) << ok.out;
  EXPECT_NE(ok.out.find("wrote " + dir.file("out.html")), std::string::npos) << ok.out;
  EXPECT_TRUE(fs::exists(dir.file("out.html")));
  struct Bad {
    std::string args, expect;
  };
  const std::string corrupt = run_dir(dir, "c", "{\"event\":\"train\",\"step\":1}\nnot json\n");
  for (const Bad& b : {Bad{dir.file("nowhere"), "no such run directory"}, Bad{dir.path(), "no metrics.jsonl"},
                       Bad{corrupt, "metrics.jsonl:2: not a JSON line"},
                       Bad{run + " --output " + dir.file("no/such/dir/x.html"), "directory does not exist"}}) {
    mtl_test::ShellRun r = mtl_test::run_shell(mtl + b.args);
    EXPECT_EQ(r.code, 2) << b.args << ": " << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
    EXPECT_NE(r.out.find(b.expect), std::string::npos) << r.out;
  }
}

TEST(ReportCharts, StepLossesComeFromWeightsLinesWhenLogged) {
  mtl_test::TempDir dir("report_steps");
  std::string log = "{\"event\":\"train\",\"step\":1,\"epoch\":0,\"lr\":0.1,\"a/loss\":2.0,\"a/weight\":1}\n";
  for (int s = 1; s <= 3; ++s)
    log += "{\"event\":\"weights\",\"step\":" + std::to_string(s) + ",\"epoch\":0,\"a/weight\":0.5,\"a/loss\":" +
           std::to_string(4 - s) + "}\n";
  auto charts = mtl::report_charts({mtl::read_run_log(run_dir(dir, "w", log))});
  ASSERT_GE(charts.size(), 2u);
  EXPECT_EQ(charts[0].title, "training loss");
  EXPECT_EQ(charts[0].x, (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(charts[0].series[0].y, (std::vector<double>{3, 2, 1}));
  EXPECT_EQ(charts[1].series[0].y, (std::vector<double>{0.5, 0.5, 0.5}));
}
