// The text example configs on real data: State of the Union passages (tools/prepare_sotu.py, fetched once with
// npm pack into the build tree) alone and jointly with MultiFashion.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "test_util.h"

namespace fs = std::filesystem;

namespace {

using mtl_test::ShellRun;
ShellRun sh(const std::string& cmd) { return mtl_test::run_shell(cmd); }

using mtl_test::sotu_dir;

// Every k-th passage of the prepared test split (the split is in year order, so this keeps every era), written
// to `out`: the suite evaluates on a third or a tenth of the 3010 passages, which is most of these tests' time.
std::string test_sample(const std::string& data, int k, const std::string& out) {
  std::ifstream in(data + "/test.jsonl");
  std::ofstream os(out);
  std::string line;
  for (int i = 0; std::getline(in, line); ++i)
    if (i % k == 0) os << line << "\n";
  return out;
}

// Final eval line of a run's metrics log.
nlohmann::json final_eval(const std::string& run_dir) {
  std::ifstream in(run_dir + "/metrics.jsonl");
  std::string line, last;
  while (std::getline(in, line))
    if (line.find("\"eval\"") != std::string::npos) last = line;
  return last.empty() ? nlohmann::json() : nlohmann::json::parse(last);
}

double value(const nlohmann::json& eval, const std::string& key) {
  if (eval.contains(key)) return eval[key].get<double>();
  ADD_FAILURE() << "no " << key << " in " << eval.dump();
  return 0.0;
}

// Mean absolute deviation of `field` in a JSONL file from the mean of the same field in `train`: the MAE of
// the best constant prediction a model could learn without reading the text.
double constant_mae(const std::string& train, const std::string& test, const std::string& field) {
  auto values = [&](const std::string& path) {
    std::vector<double> v;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) v.push_back(nlohmann::json::parse(line)[field].get<double>());
    return v;
  };
  std::vector<double> tr = values(train), te = values(test);
  double mean = 0;
  for (double x : tr) mean += x / tr.size();
  double mae = 0;
  for (double x : te) mae += std::abs(x - mean) / te.size();
  return mae;
}

TEST(TextConfigs, JointFashionAndSotuTrainEndToEndAndBothFamiliesBeatChance) {
  if (!fs::exists(std::string(MTL_BINARY_DIR) + "/mtl")) GTEST_SKIP() << "CLI not built";
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  const std::string data = sotu_dir();
  ASSERT_TRUE(fs::exists(data + "/train.jsonl"));
  mtl_test::TempDir dir("joint_config");
  const std::string run = dir.file("run");
  const std::string test = test_sample(data, 3, dir.file("test.jsonl"));
  ShellRun r = sh(std::string(MTL_BINARY_DIR) + "/mtl train " + mtl_test::source_path("configs/joint_fashion_sotu.yaml") +
             " -q --threads 2 --set datasets.fashion.train_size=6000 --set datasets.fashion.test_size=1000" +
             " --set datasets.fashion.cache_dir=" + dir.file("cache") + " --set datasets.sotu.train=" + data +
             "/train.jsonl --set datasets.sotu.test=" + test + " --set trainer.epochs=0" +
             " --set trainer.max_steps=250 --set trainer.run_dir=" + run);
  ASSERT_EQ(r.code, 0) << r.out;
  nlohmann::json e = final_eval(run);
  ASSERT_FALSE(e.is_null()) << r.out;
  // Image tasks: 10 classes (chance 0.10).
  EXPECT_GT(value(e, "left/accuracy"), 0.3) << e.dump();
  EXPECT_GT(value(e, "right/accuracy"), 0.3) << e.dump();
  // Text tasks: 8 parties (chance 0.125), the year better than the best constant.
  EXPECT_GT(value(e, "party/accuracy"), 0.25) << e.dump();
  EXPECT_LT(value(e, "year/mae"), 0.9 * constant_mae(data + "/train.jsonl", test, "decade")) << e.dump();
  // The run keeps its tokenizer and class lists; eval from the run directory reproduces the final metrics.
  EXPECT_TRUE(fs::exists(run + "/tokenizer/vocab.txt"));
  EXPECT_TRUE(fs::exists(run + "/data/sotu/labels.json"));
  ShellRun ev = sh(std::string(MTL_BINARY_DIR) + "/mtl eval " + run + "/config.yaml --checkpoint " + run +
              " --output " + dir.file("eval.json"));
  ASSERT_EQ(ev.code, 0) << ev.out;
  nlohmann::json again = nlohmann::json::parse(std::ifstream(dir.file("eval.json")));
  EXPECT_NEAR(again["party/accuracy"].get<double>(), value(e, "party/accuracy"), 1e-9);
  EXPECT_NEAR(again["left/accuracy"].get<double>(), value(e, "left/accuracy"), 1e-9);
}

// The cross-stitch text config: three Transformer copies mixed by learned weights, trained a few steps.
TEST(TextConfigs, SotuCrossStitchConfigTrains) {
  if (!fs::exists(std::string(MTL_BINARY_DIR) + "/mtl")) GTEST_SKIP() << "CLI not built";
  const std::string data = sotu_dir();
  mtl_test::TempDir dir("sotu_cross_stitch");
  const std::string run = dir.file("run");
  ShellRun r = sh(std::string(MTL_BINARY_DIR) + "/mtl train " + mtl_test::source_path("configs/sotu_cross_stitch.yaml") +
                  " -q --threads 2 --set data.train=" + data + "/train.jsonl --set data.test=" +
                  test_sample(data, 10, dir.file("test.jsonl")) +
                  " --set trainer.epochs=0 --set trainer.max_steps=20 --set baselines=none" +
                  " --set trainer.run_dir=" + run);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("cross_stitch over backbone transformer"), std::string::npos) << r.out;
  nlohmann::json e = final_eval(run);
  EXPECT_TRUE(e.contains("party/accuracy") && e.contains("president/accuracy") && e.contains("year/mae")) << e.dump();
}

TEST(TextConfigs, SotuTrainsAndAnUnknownEvalLabelIsAOneLineError) {
  if (!fs::exists(std::string(MTL_BINARY_DIR) + "/mtl")) GTEST_SKIP() << "CLI not built";
  const std::string data = sotu_dir();
  mtl_test::TempDir dir("sotu_config");
  const std::string run = dir.file("run");
  const std::string test = test_sample(data, 3, dir.file("test.jsonl"));
  const std::string sets = " --set data.train=" + data + "/train.jsonl --set data.test=" + test;
  ShellRun r = sh(std::string(MTL_BINARY_DIR) + "/mtl train " + mtl_test::source_path("configs/sotu.yaml") + " -q --threads 2" +
             sets + " --set trainer.epochs=0 --set trainer.max_steps=150 --set trainer.run_dir=" + run);
  ASSERT_EQ(r.code, 0) << r.out;
  nlohmann::json e = final_eval(run);
  EXPECT_GT(value(e, "party/accuracy"), 0.25) << e.dump();
  EXPECT_LT(value(e, "year/mae"), 0.9 * constant_mae(data + "/train.jsonl", test, "decade")) << e.dump();

  // Eval data with a party the training split never had: file, line, and a non-zero exit.
  std::ifstream in(data + "/test.jsonl");
  std::string first;
  std::getline(in, first);
  nlohmann::json row = nlohmann::json::parse(first);
  row["party"] = "Bull Moose";
  mtl_test::write_file(dir.file("bad.jsonl"), first + "\n" + row.dump() + "\n");
  ShellRun bad = sh(std::string(MTL_BINARY_DIR) + "/mtl eval " + run + "/config.yaml --checkpoint " + run +
               " --set data.test=" + dir.file("bad.jsonl"));
  EXPECT_EQ(bad.code, 2) << bad.out;
  EXPECT_NE(bad.out.find("bad.jsonl:2"), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("Bull Moose"), std::string::npos) << bad.out;
}

}  // namespace
