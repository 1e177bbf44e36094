// Single-task baselines and delta-m end to end on a tiny real MultiFashion subset: the baselines equal
// training each single-task config directly, a multi-task run then reports the delta-m computed from them
// (metrics log, eval table), stale and malformed files are reported, the `baselines` key is validated.
#include "mtl/run/baselines.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "mtl/run/trainer.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {

#define REQUIRE_FASHION_MNIST() \
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed"

std::string data_yaml(const std::string& cache_dir) {
  return "data: {type: multi_fashion, train_size: 200, test_size: 100, cache_dir: '" + cache_dir + "'}\n" +
         "model:\n  backbone: {type: lenet}\n";
}

const char* kRest = R"(optimizer: {type: sgd, lr: 0.02, momentum: 0.9}
trainer: {epochs: 1, batch_size: 50, threads: 1, seed: 5, log_interval: 1}
)";

// Two tasks, a loss weight and a weighting method that the single-task runs must not inherit.
std::string multi_yaml(const std::string& cache_dir) {
  return data_yaml(cache_dir) + R"(tasks:
  left: {label: left, metrics: [accuracy, macro_f1]}
  right: {label: right, weight: 2.5, metrics: [accuracy], head: {hidden: [16]}}
weighting: {method: uw}
)" + kRest;
}

// What a user would write by hand for one task alone.
std::string single_yaml(const std::string& cache_dir, const std::string& task) {
  std::string t = task == "left" ? "  left: {label: left, metrics: [accuracy, macro_f1]}\n"
                                 : "  right: {label: right, metrics: [accuracy], head: {hidden: [16]}}\n";
  return data_yaml(cache_dir) + "tasks:\n" + t + "weighting: {method: ew}\n" + kRest;
}

mtl::Run make(const std::string& yaml, const std::vector<std::string>& sets = {}) {
  return mtl::assemble(mtl::Config::from_string(yaml, "test.yaml", sets));
}

// Made-up results for file-level tests (no training needed).
mtl::Baselines fake_baselines(const mtl::Run& ex) {
  mtl::Baselines b;
  b.config = "test.yaml";
  b.fingerprint = mtl::baseline_fingerprint(ex.config.source);
  for (const auto& t : ex.tasks) {
    mtl::TaskResult tr;
    tr.task = t.name;
    tr.loss = 1.0;
    tr.examples = 100;
    tr.metrics.push_back({"accuracy", 0.5, true});
    b.results.tasks.push_back(tr);
    b.run_dirs[t.name] = "runs/x.baselines/" + t.name;
    b.steps[t.name] = 4;
  }
  return b;
}

nlohmann::json last_eval_line(const std::string& log_path) {
  std::istringstream in(mtl_test::read_file(log_path));
  std::string line;
  nlohmann::json last;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    if (j["event"] == "eval") last = j;
  }
  return last;
}

}  // namespace

TEST(Baselines, EqualDirectSingleTaskTrainingAndGiveTheMultiTaskDeltaM) {
  REQUIRE_FASHION_MNIST();
  mtl_test::TempDir dir("baselines_e2e");
  const std::string cache = dir.file("cache");
  mtl::Run ex = make(multi_yaml(cache), {"trainer.run_dir=" + dir.file("run")});
  const std::string path = dir.file("run.baselines/baselines.json");
  EXPECT_EQ(ex.config.baselines.path, path);
  EXPECT_FALSE(mtl::find_baselines(ex.config).baselines.has_value());  // not written yet: nothing, and no note
  EXPECT_TRUE(mtl::find_baselines(ex.config).note.empty());

  mtl::BaselinesRun run = mtl::run_baselines(ex.config, {false});
  ASSERT_FALSE(run.interrupted);
  EXPECT_EQ(run.path, path);
  ASSERT_TRUE(fs::exists(path));
  mtl::Baselines b = mtl::read_baselines(path);
  ASSERT_EQ(b.results.tasks.size(), 2u);
  EXPECT_EQ(b.steps.at("left"), 4);  // 200 examples / batch 50, one epoch
  EXPECT_EQ(b.run_dirs.at("right"), dir.file("run.baselines/right"));
  EXPECT_TRUE(fs::exists(dir.file("run.baselines/right/checkpoint.pt")));

  // Each baseline is exactly what training the hand-written single-task config gives (same seed).
  for (const std::string task : {"left", "right"}) {
    mtl::Run direct = make(single_yaml(cache, task), {"trainer.run_dir=" + dir.file("direct_" + task)});
    mtl::TrainSummary s = mtl::train(direct, {"", false});
    const mtl::TaskResult& want = s.final_eval.tasks.at(0);
    const mtl::TaskResult* got = nullptr;
    for (const auto& t : b.results.tasks)
      if (t.task == task) got = &t;
    ASSERT_NE(got, nullptr) << task;
    EXPECT_EQ(got->loss, want.loss) << task;
    EXPECT_EQ(got->examples, want.examples) << task;
    ASSERT_EQ(got->metrics.size(), want.metrics.size()) << task;
    for (size_t k = 0; k < want.metrics.size(); ++k) {
      EXPECT_EQ(got->metrics[k].name, want.metrics[k].name);
      EXPECT_EQ(got->metrics[k].value, want.metrics[k].value) << task << "/" << want.metrics[k].name;
      EXPECT_EQ(got->metrics[k].higher_is_better, want.metrics[k].higher_is_better);
    }
  }

  // A multi-task run of the same config now reports delta-m, computed from the file by hand here.
  mtl::Run multi = make(multi_yaml(cache), {"trainer.run_dir=" + dir.file("run")});
  mtl::TrainSummary s = mtl::train(multi, {"", false});
  ASSERT_TRUE(s.final_eval.delta_m.has_value());
  ASSERT_TRUE(s.final_eval.delta_m->valid);
  double sum = 0.0;
  int n = 0;
  for (const auto& [task, metric] : std::vector<std::pair<std::string, std::string>>{
           {"left", "accuracy"}, {"left", "macro_f1"}, {"right", "accuracy"}}) {
    double base = 0.0;
    for (const auto& t : b.results.tasks)
      for (const auto& m : t.metrics)
        if (t.task == task && m.name == metric) base = m.value;
    ASSERT_NE(base, 0.0);
    sum += (s.final_eval.value(task, metric) - base) / base;  // all higher-is-better
    ++n;
  }
  const double expected = 100.0 * sum / n;
  EXPECT_NEAR(s.final_eval.delta_m->percent, expected, 1e-9);
  EXPECT_EQ(s.final_eval.delta_m->terms, 3);

  nlohmann::json eval = last_eval_line(fs::path(s.run_dir).append("metrics.jsonl").string());
  ASSERT_TRUE(eval.contains("delta_m")) << eval.dump();
  EXPECT_NEAR(eval["delta_m"].get<double>(), expected, 1e-9);
  ASSERT_TRUE(eval.contains("left/delta_m"));
  std::string table = mtl::format_eval_table(s.final_eval);
  EXPECT_NE(table.find("delta_m%"), std::string::npos) << table;
  EXPECT_NE(table.find("delta-m " + mtl::format_percent(expected)), std::string::npos) << table;
  EXPECT_NE(table.find("positive = multi-task better"), std::string::npos) << table;
}

TEST(Baselines, SingleTaskConfigKeepsOneTaskWithEqualWeighting) {
  mtl_test::TempDir dir("baselines_cfg");
  mtl::Run ex = make(multi_yaml(dir.file("cache")), {"trainer.run_dir=" + dir.file("run/")});
  mtl::Run single = mtl::assemble(mtl::single_task_config(ex.config, "right"));
  ASSERT_EQ(single.tasks.size(), 1u);
  EXPECT_EQ(single.tasks[0].name, "right");
  EXPECT_EQ(single.tasks[0].weight, 1.0);  // not 2.5
  EXPECT_EQ(single.config.trainer.run_dir, dir.file("run.baselines/right"));
  EXPECT_TRUE(single.config.baselines.path.empty());
  EXPECT_EQ(single.config.source.resolved()["weighting"]["method"].as<std::string>(), "ew");
  EXPECT_EQ(single.config.trainer.seed, 5);
  EXPECT_EQ(single.config.source.resolved()["tasks"]["right"]["head"]["hidden"][0].as<int>(), 16);
  // Same backbone: identical initial trunk weights (built first from the same seed).
  auto a = ex.model->backbone()->named_parameters(), c = single.model->backbone()->named_parameters();
  ASSERT_EQ(a.size(), c.size());
  for (const auto& kv : a) EXPECT_TRUE(kv.value().equal(c[kv.key()])) << kv.key();
  EXPECT_MTL_ERROR(mtl::single_task_config(ex.config, "middle"), "no task 'middle'");
}

TEST(Baselines, StaleOrIncompleteBaselinesAreReportedNotUsed) {
  mtl_test::TempDir dir("baselines_stale");
  const std::string cache = dir.file("cache");
  const std::vector<std::string> base_sets{"trainer.run_dir=" + dir.file("run")};
  mtl::Run ex = make(multi_yaml(cache), base_sets);
  mtl::write_baselines(fake_baselines(ex), ex.config.baselines.path);

  auto with = [&](std::vector<std::string> sets) {
    sets.insert(sets.begin(), base_sets.begin(), base_sets.end());
    return mtl::find_baselines(make(multi_yaml(cache), sets).config);
  };
  // Matches: the same config, and changes that do not alter what a baseline means.
  for (auto sets : std::vector<std::vector<std::string>>{
           {}, {"trainer.threads=2"}, {"weighting.method=ew"}, {"tasks.right.weight=1"},
           {"trainer.log_interval=7"}, {"data.cache_dir=" + dir.file("other_cache")}}) {
    mtl::BaselinesLookup lk = with(sets);
    EXPECT_TRUE(lk.baselines.has_value()) << (sets.empty() ? "" : sets[0]) << ": " << lk.note;
    EXPECT_TRUE(lk.note.empty()) << lk.note;
  }
  // Stale: each note names what differs and the file.
  struct Case {
    std::string set, says;
  };
  for (const auto& c : std::vector<Case>{{"optimizer.lr=0.05", "optimizer differs"},
                                         {"trainer.epochs=2", "trainer budget/seed differs"},
                                         {"trainer.seed=6", "trainer budget/seed differs"},
                                         {"data.train_size=300", "data differs"},
                                         {"model.backbone.out_features=40", "model differs"},
                                         {"scheduler.type=cosine", "scheduler differs"},
                                         {"tasks.right.head.hidden=[8]", "task 'right' differs"},
                                         {"tasks.left.metrics=[accuracy]", "task 'left' differs"}}) {
    mtl::BaselinesLookup lk = with({c.set});
    EXPECT_FALSE(lk.baselines.has_value()) << c.set;
    EXPECT_NE(lk.note.find(c.says), std::string::npos) << c.set << ": " << lk.note;
    EXPECT_NE(lk.note.find(ex.config.baselines.path), std::string::npos) << lk.note;
    EXPECT_EQ(lk.note.find('\n'), std::string::npos) << lk.note;
  }
  // A task the baselines never saw.
  std::string three = multi_yaml(cache);
  three.replace(three.find("weighting:"), 0, "  top: {label: left}\n");
  mtl::BaselinesLookup lk = mtl::find_baselines(make(three, base_sets).config);
  EXPECT_FALSE(lk.baselines.has_value());
  EXPECT_NE(lk.note.find("no baseline for task 'top'"), std::string::npos) << lk.note;
}

TEST(Baselines, MalformedFileIsOneLineErrorNamingIt) {
  mtl_test::TempDir dir("baselines_bad");
  mtl::Run ex = make(multi_yaml(dir.file("cache")), {"trainer.run_dir=" + dir.file("run")});
  fs::create_directories(fs::path(ex.config.baselines.path).parent_path());
  mtl_test::write_file(ex.config.baselines.path, "{\"format\": \"mtl-baselines/1\", \"tasks\": [1,");
  EXPECT_MTL_ERROR(mtl::find_baselines(ex.config), ex.config.baselines.path, "not a valid mtl baselines file", "not JSON");
  mtl_test::write_file(ex.config.baselines.path, "[1, 2]");
  EXPECT_MTL_ERROR(mtl::find_baselines(ex.config), ex.config.baselines.path, "expected a JSON object");
  mtl_test::write_file(ex.config.baselines.path, "{\"format\": \"mtl-baselines/1\", \"config\": \"x.yaml\"}");
  EXPECT_MTL_ERROR(mtl::find_baselines(ex.config), ex.config.baselines.path, "missing 'fingerprint'");
  mtl_test::write_file(ex.config.baselines.path, "{\"format\": \"something else\"}");
  EXPECT_MTL_ERROR(mtl::find_baselines(ex.config), "format 'something else', expected 'mtl-baselines/1'");

  // A written file, then one value of the wrong type.
  mtl::write_baselines(fake_baselines(ex), ex.config.baselines.path);
  auto j = nlohmann::json::parse(mtl_test::read_file(ex.config.baselines.path));
  j["tasks"]["left"]["metrics"]["accuracy"]["value"] = "high";
  mtl_test::write_file(ex.config.baselines.path, j.dump());
  EXPECT_MTL_ERROR(mtl::find_baselines(ex.config), ex.config.baselines.path, "'tasks.left.metrics.accuracy.value' should be a number");
  EXPECT_MTL_ERROR(mtl::read_baselines(dir.file("absent.json")), "absent.json", "cannot open baselines file");
}

TEST(Baselines, ConfigKeyAndTaskCount) {
  mtl_test::TempDir dir("baselines_key");
  const std::string yaml = multi_yaml(dir.file("cache"));
  EXPECT_EQ(make(yaml, {"trainer.run_dir=runs/abc"}).config.baselines.path, "runs/abc.baselines/baselines.json");
  mtl::Run none = make(yaml, {"baselines=none"});
  EXPECT_TRUE(none.config.baselines.path.empty());
  EXPECT_MTL_ERROR(mtl::run_baselines(none.config, {false}), "--set baselines", "'none'");
  mtl::Run given = make(yaml, {"baselines=" + dir.file("mine.json")});
  EXPECT_EQ(given.config.baselines.path, dir.file("mine.json"));
  EXPECT_TRUE(given.config.baselines.explicit_path);
  // Configured but not written yet: a note, not an error.
  EXPECT_NE(mtl::find_baselines(given.config).note.find("no baselines file"), std::string::npos);
  EXPECT_MTL_ERROR(make(yaml, {"baselines=[1, 2]"}), "--set baselines", "expected a string");
  EXPECT_MTL_ERROR(make(yaml + "baselines: [1, 2]\n"), "test.yaml", "(baselines)", "expected a string");
  EXPECT_MTL_ERROR(make(yaml + "baseline: x.json\n"), "unknown key 'baseline'", "did you mean 'baselines'");
  // The resolved config records the key, so a saved run config builds again.
  EXPECT_EQ(make(yaml).config.source.resolved()["baselines"].as<std::string>(), "auto");

  std::string one = yaml;
  one.erase(one.find("  right:"), one.find("weighting:") - one.find("  right:"));
  EXPECT_MTL_ERROR(mtl::run_baselines(make(one).config, {false}), "at least 2 tasks", "has 1");
}
