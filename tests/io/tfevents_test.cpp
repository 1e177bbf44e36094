// TensorBoard event files: CRC-32C against the standard's check values, and files decoded by an independent
// reader (tests/io/tfevents_reference.py: python3-crc32c verifies every record's checksums, python3-protobuf decodes
// the Event and Summary messages), including a real training run whose scalars equal its metrics.jsonl.
#include "mtl/io/tfevents.h"

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <tuple>

#include "mtl/run/assembler.h"
#include "mtl/run/trainer.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {

const char* kPython = "/usr/bin/python3";

// The reference reader's JSON for `file`; skips the test (with the reason) when its modules are missing.
nlohmann::json decode(const std::string& file, bool* skip) {
  mtl_test::ShellRun r = mtl_test::run_shell(std::string(kPython) + " " +
                                             mtl_test::source_path("tests/io/tfevents_reference.py") + " " + file);
  *skip = r.code == 3;
  if (r.code != 0) {
    if (!*skip) ADD_FAILURE() << r.out;
    return {};
  }
  return nlohmann::json::parse(r.out.substr(r.out.find('{')));
}

#define DECODE_OR_SKIP(var, file)                                                                       \
  bool skip_##var = false;                                                                               \
  nlohmann::json var = decode(file, &skip_##var);                                                        \
  if (skip_##var) GTEST_SKIP() << "python3-protobuf or python3-crc32c is missing (tools/setup.sh installs them)"; \
  ASSERT_FALSE(var.is_null())

std::vector<std::string> event_files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find("tfevents") != std::string::npos) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST(TfEvents, Crc32cMatchesTheStandardCheckValues) {
  const std::string digits = "123456789";
  EXPECT_EQ(mtl::crc32c(digits.data(), digits.size()), 0xE3069283u);  // the CRC-32C check value
  const std::string zeros(32, '\0'), ones(32, '\xff');
  EXPECT_EQ(mtl::crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);  // RFC 3720, B.4
  EXPECT_EQ(mtl::crc32c(ones.data(), ones.size()), 0x62A8AB43u);
}

TEST(TfEvents, AnIndependentReaderDecodesTheScalars) {
  mtl_test::TempDir dir("tfevents");
  std::string path;
  {
    mtl::TfEventsWriter w(dir.file("tb"));
    path = w.path();
    w.scalar("train/left/loss", 1, 0.75f);
    w.scalar("train/left/loss", 50, 0.5f);
    w.scalar("eval/left/accuracy", 50, 0.8125f);
    w.scalar("weights/right/weight", 7, -1.25e-7f);
  }
  EXPECT_NE(path.find("events.out.tfevents."), std::string::npos) << path;
  DECODE_OR_SKIP(got, path);
  EXPECT_EQ(got["file_version"], "brain.Event:2");
  EXPECT_EQ(got["records"], 5);  // the file version, then one record per scalar
  ASSERT_EQ(got["scalars"].size(), 4u);
  EXPECT_EQ(got["scalars"][0][0], 1);
  EXPECT_EQ(got["scalars"][0][1], "train/left/loss");
  EXPECT_EQ(got["scalars"][0][2].get<float>(), 0.75f);
  EXPECT_EQ(got["scalars"][2][1], "eval/left/accuracy");
  EXPECT_EQ(got["scalars"][3][2].get<float>(), -1.25e-7f);
  EXPECT_GT(got["scalars"][3][3].get<double>(), 1.7e9);  // wall time in seconds since 1970

  // A second writer in the same directory makes its own file; a damaged byte is caught by the reader's CRCs.
  mtl::TfEventsWriter second(dir.file("tb"));
  EXPECT_NE(second.path(), path);
  std::string bytes = mtl_test::read_file(path);
  bytes[bytes.size() - 9] ^= 0x01;  // inside the last record's data
  mtl_test::write_file(path, bytes);
  mtl_test::ShellRun bad = mtl_test::run_shell(std::string(kPython) + " " +
                                               mtl_test::source_path("tests/io/tfevents_reference.py") + " " + path);
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.out.find("record 4: data CRC mismatch"), std::string::npos) << bad.out;
}

TEST(TfEvents, ATrainingRunMirrorsItsMetricsLogAndAResumeAddsAFile) {
  mtl_test::TempDir dir("tfevents_run");
  std::string csv = "x1,x2,a,b\n";
  for (int i = 0; i < 40; ++i)
    csv += std::to_string(i % 5) + "," + std::to_string(i % 7) + "," + std::to_string(i % 3) + "," +
           std::to_string(i % 2) + "\n";
  mtl_test::write_file(dir.file("train.csv"), csv);
  const std::string run_dir = dir.file("run");
  auto yaml = [&](int epochs) {
    return "data: {type: csv, train: " + dir.file("train.csv") + ", test: " + dir.file("train.csv") +
           ", labels: {a: {}, b: {}}}\nmodel: {backbone: {type: mlp, hidden: [8]}}\n"
           "tasks: {a: {}, b: {}}\nweighting: {method: dwa}\noptimizer: {type: sgd, lr: 0.1}\n"
           "trainer: {epochs: " + std::to_string(epochs) + ", batch_size: 8, threads: 1, seed: 1, log_interval: 2, "
           "run_dir: " + run_dir + "}\nlogging: {tensorboard: true}\nbaselines: none\n";
  };
  mtl::Run first = mtl::assemble(mtl::Config::from_string(yaml(1), "tb.yaml"));
  mtl::train(first, mtl::TrainRunOptions{"", false});
  mtl::Run resumed = mtl::assemble(mtl::Config::from_string(yaml(2), "tb.yaml"));
  mtl::TrainRunOptions resume{"", false};
  resume.resume_dir = run_dir;
  mtl::train(resumed, resume);

  const std::vector<std::string> files = event_files(run_dir + "/tensorboard");
  ASSERT_EQ(files.size(), 2u);  // one per process start
  // Every finite value of metrics.jsonl, as "<event>/<key>" at its step, in order.
  std::vector<std::tuple<int64_t, std::string, float>> want;
  std::istringstream lines(mtl_test::read_file(run_dir + "/metrics.jsonl"));
  int epochs = 0;
  for (std::string line; std::getline(lines, line);) {
    nlohmann::ordered_json j = nlohmann::ordered_json::parse(line);  // keys in the file's order
    if (j["event"] == "epoch") {  // throughput: the epoch's 40 examples over its seconds
      ++epochs;
      EXPECT_NEAR(j["examples_per_second"].get<double>() * j["seconds"].get<double>(), 40.0, 1e-6) << line;
    }
    for (auto& [k, v] : j.items())
      if (k != "event" && k != "step" && k != "epoch" && v.is_number())
        want.emplace_back(j["step"].get<int64_t>(), j["event"].get<std::string>() + "/" + k, v.get<float>());
  }
  std::vector<std::tuple<int64_t, std::string, float>> got;
  std::vector<std::pair<int64_t, int64_t>> step_range;  // per file
  for (const auto& f : files) {
    DECODE_OR_SKIP(d, f);
    std::pair<int64_t, int64_t> range{INT64_MAX, INT64_MIN};
    for (const auto& s : d["scalars"]) {
      got.emplace_back(s[0].get<int64_t>(), s[1].get<std::string>(), s[2].get<float>());
      range = {std::min(range.first, s[0].get<int64_t>()), std::max(range.second, s[0].get<int64_t>())};
    }
    step_range.push_back(range);
  }
  ASSERT_GT(want.size(), 20u);
  EXPECT_EQ(epochs, 2);
  EXPECT_EQ(got, want);
  // The first process wrote epoch 1 (steps 1-5 of 8 examples each), the resumed one goes on from there.
  EXPECT_EQ(step_range[0], std::make_pair(int64_t{0}, int64_t{5}));
  EXPECT_GE(step_range[1].first, 5);
  EXPECT_EQ(step_range[1].second, 10);
}
