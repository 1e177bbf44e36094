#include "mtl/report/run_log.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "mtl/core/error.h"
#include "mtl/core/text.h"

namespace fs = std::filesystem;

namespace mtl {

bool LogLine::has(const std::string& key) const {
  for (const auto& kv : values)
    if (kv.first == key) return true;
  return false;
}

double LogLine::get(const std::string& key) const {
  for (const auto& kv : values)
    if (kv.first == key) return kv.second;
  return std::numeric_limits<double>::quiet_NaN();
}

std::vector<const LogLine*> RunLog::lines_of(const std::string& event) const {
  std::vector<const LogLine*> out;
  for (const auto& l : lines)
    if (l.event == event) out.push_back(&l);
  return out;
}

std::vector<std::string> RunLog::tasks() const {
  std::vector<std::string> out;
  const std::string suffix = "/loss";
  for (const auto& l : lines)
    for (const auto& kv : l.values) {
      const std::string& k = kv.first;
      if (k.size() <= suffix.size() || k.compare(k.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
      const std::string task = k.substr(0, k.size() - suffix.size());
      if (task.find('/') == std::string::npos && std::find(out.begin(), out.end(), task) == out.end())
        out.push_back(task);
    }
  return out;
}

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

LogLine parse_line(const std::string& text, const std::string& where) {
  nlohmann::ordered_json j;  // the file's key order: tasks and metrics as the run logged them
  try {
    j = nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(where, "not a JSON line (" + first_line(e.what()) + ")");
  }
  if (!j.is_object()) throw Error(where, "expected a JSON object, got " + std::string(j.type_name()));
  if (!j.contains("event") || !j["event"].is_string()) throw Error(where, "expected an \"event\" string");
  if (!j.contains("step") || !j["step"].is_number_integer()) throw Error(where, "expected an integer \"step\"");
  LogLine l;
  l.event = j["event"].get<std::string>();
  l.step = j["step"].get<int64_t>();
  if (j.contains("epoch") && j["epoch"].is_number_integer()) l.epoch = j["epoch"].get<int64_t>();
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "event" || it.key() == "step" || it.key() == "epoch") continue;
    if (it.value().is_number()) l.values.emplace_back(it.key(), it.value().get<double>());
    else if (it.value().is_null()) l.values.emplace_back(it.key(), std::numeric_limits<double>::quiet_NaN());
  }
  return l;
}

}  // namespace

RunLog read_run_log(const std::string& dir) {
  if (!fs::is_directory(dir)) throw Error(dir, "no such run directory");
  const fs::path metrics = fs::path(dir) / "metrics.jsonl";
  if (!fs::exists(metrics))
    throw Error(dir, "no metrics.jsonl: not a run directory (give the trainer.run_dir of an `mtl train` run)");
  RunLog run;
  run.dir = dir;
  run.name = fs::path(dir).lexically_normal().filename().string();
  if (run.name.empty()) run.name = fs::path(dir).lexically_normal().parent_path().filename().string();
  if (fs::exists(fs::path(dir) / "config.yaml")) run.config = read_file(fs::path(dir) / "config.yaml");
  const std::string text = read_file(metrics);
  size_t pos = 0;
  int64_t number = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    const bool complete = end != std::string::npos;
    if (!complete) end = text.size();
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = metrics.string() + ":" + std::to_string(number);
    try {
      run.lines.push_back(parse_line(line, where));
    } catch (const Error&) {
      if (complete) throw;  // an unfinished last line: the run is writing it
    }
  }
  if (run.lines.empty()) throw Error(metrics.string(), "no metrics yet: the run has not logged a line");
  return run;
}

}  // namespace mtl
