#include "mtl/run/baselines.h"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "mtl/run/assembler.h"
#include "mtl/run/trainer.h"
#include "mtl/io/atomic_file.h"

namespace fs = std::filesystem;

namespace mtl {

namespace {

using Json = nlohmann::ordered_json;

constexpr const char* kFormat = "mtl-baselines/1";
// The config parts a baseline depends on, in report order, with the names used in messages.
const std::vector<std::pair<std::string, std::string>> kParts = {
    {"data", "data"},           {"model", "model"}, {"optimizer", "optimizer"}, {"scheduler", "scheduler"},
    {"trainer", "trainer budget/seed"}, {"engine", "engine mode"}};
// Trainer keys that change the optimisation; the rest (threads, intervals, run_dir, ...) do not.
const std::vector<std::string> kTrainerKeys = {"epochs", "max_steps", "batch_size", "drop_last", "seed"};

std::string one_line(const YAML::Node& n) {
  if (!n.IsDefined() || n.IsNull()) return "{}";
  YAML::Emitter out;
  out.SetMapFormat(YAML::Flow);
  out.SetSeqFormat(YAML::Flow);
  out << n;
  return out.c_str();
}

YAML::Node without(const YAML::Node& n, const std::string& key) {
  YAML::Node c = YAML::Clone(n);
  if (c.IsMap()) c.remove(key);
  return c;
}

// Name patterns about other tasks' heads mean nothing in a single-task model: drop them from a list.
YAML::Node without_other_heads(const YAML::Node& list, const std::vector<std::string>& others) {
  YAML::Node out(YAML::NodeType::Sequence);
  for (const auto& item : list) {
    std::string p = item.Scalar();
    bool other = false;
    for (const auto& o : others) {
      const std::string prefix = "heads." + o;
      other = other || (p.compare(0, prefix.size(), prefix) == 0 && (p.size() == prefix.size() || p[prefix.size()] == '.'));
    }
    if (!other) out.push_back(item);
  }
  return out;
}

// model.init, freeze and optimizer.groups of a single-task model: what they say about `task` and the trunk.
void keep_own_head(YAML::Node& doc, const std::string& task, const std::vector<std::string>& others) {
  YAML::Node init = doc["model"] ? doc["model"]["init"] : YAML::Node();
  if (init && init.IsMap() && init["heads"] && init["heads"].IsSequence()) {
    bool listed = false;
    for (const auto& h : init["heads"]) listed = listed || h.Scalar() == task;
    if (listed) {
      YAML::Node own(YAML::NodeType::Sequence);
      own.push_back(task);
      init["heads"] = own;
    } else {
      init["heads"] = "none";
    }
  }
  auto fix_freeze = [&](YAML::Node f) {
    if (!f || !f.IsMap()) return;
    if (f["params"] && f["params"].IsSequence()) f["params"] = without_other_heads(f["params"], others);
    if (f["train_only"] && f["train_only"].IsSequence() && f["train_only"].size() > 0) {
      YAML::Node kept = without_other_heads(f["train_only"], others);
      if (kept.size() == 0) kept.push_back("heads." + task);  // "train only the new heads": its own head
      f["train_only"] = kept;
    }
  };
  YAML::Node freeze = doc["freeze"];
  fix_freeze(freeze);
  if (freeze && freeze.IsMap() && freeze["schedule"] && freeze["schedule"].IsSequence())
    for (auto stage : freeze["schedule"]) fix_freeze(stage);
  YAML::Node groups = doc["optimizer"] ? doc["optimizer"]["groups"] : YAML::Node();
  if (groups && groups.IsSequence()) {
    YAML::Node kept(YAML::NodeType::Sequence);
    for (auto g : groups) {
      if (g.IsMap() && g["params"] && g["params"].IsSequence()) g["params"] = without_other_heads(g["params"], others);
      if (!(g.IsMap() && g["params"] && g["params"].size() == 0)) kept.push_back(g);
    }
    doc["optimizer"]["groups"] = kept;
  }
}

YAML::Node only(const YAML::Node& n, const std::vector<std::string>& keys) {
  YAML::Node out(YAML::NodeType::Map);
  if (!n.IsMap()) return out;
  for (const auto& k : keys)
    if (n[k]) out[k] = YAML::Clone(n[k]);
  return out;
}

std::string task_run_dir(const RunConfig& rc, const std::string& task) {
  std::string base = rc.trainer.run_dir;
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  return base + ".baselines/" + task;
}

// ---- reading: every structural problem is one line naming the file and the JSON path.
[[noreturn]] void malformed(const std::string& path, const std::string& what) {
  throw Error(path, "not a valid mtl baselines file: " + what + " (write it with `mtl baselines CONFIG`)");
}

const Json& member(const Json& obj, const std::string& key, const std::string& at, const std::string& path) {
  if (!obj.is_object() || !obj.contains(key)) malformed(path, "missing '" + at + key + "'");
  return obj.at(key);
}

std::string string_member(const Json& obj, const std::string& key, const std::string& at, const std::string& path) {
  const Json& v = member(obj, key, at, path);
  if (!v.is_string()) malformed(path, "'" + at + key + "' should be a string");
  return v.get<std::string>();
}

double number_member(const Json& obj, const std::string& key, const std::string& at, const std::string& path) {
  const Json& v = member(obj, key, at, path);
  if (!v.is_number()) malformed(path, "'" + at + key + "' should be a number");
  return v.get<double>();
}

const Json& object_member(const Json& obj, const std::string& key, const std::string& at, const std::string& path) {
  const Json& v = member(obj, key, at, path);
  if (!v.is_object()) malformed(path, "'" + at + key + "' should be an object");
  return v;
}

}  // namespace

BaselineFingerprint baseline_fingerprint(const Config& config) {
  const YAML::Node r = config.resolved();  // const: lookups must not add keys to the live resolved config
  BaselineFingerprint f;
  if (r["datasets"]) {  // each task's baseline trains on its own dataset; the sampler plays no part
    YAML::Node all(YAML::NodeType::Map);
    for (auto it = r["datasets"].begin(); it != r["datasets"].end(); ++it)
      all[it->first.Scalar()] = without(it->second, "cache_dir");
    f.parts["data"] = one_line(all);
  } else {
    f.parts["data"] = one_line(without(r["data"], "cache_dir"));  // where the cache lives changes nothing
  }
  if (r["tokenizer"]) f.parts["data"] += " tokenizer " + one_line(r["tokenizer"]);
  // A baseline is a single-task network (hard sharing with one task) whatever architecture the multi-task run
  // uses, so that every architecture is compared against the same baselines.
  f.parts["model"] = one_line(without(r["model"], "architecture"));
  f.parts["optimizer"] = one_line(r["optimizer"]);
  f.parts["scheduler"] = one_line(r["scheduler"]);
  f.parts["trainer"] = one_line(only(r["trainer"], kTrainerKeys));
  f.parts["engine"] = one_line(only(r["engine"], {"mode"}));
  const YAML::Node tasks = r["tasks"];
  if (tasks.IsMap())
    for (auto it = tasks.begin(); it != tasks.end(); ++it)
      f.tasks[it->first.Scalar()] = one_line(without(it->second, "weight"));
  return f;
}

Baselines read_baselines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path, "cannot open baselines file");
  std::stringstream ss;
  ss << in.rdbuf();
  Json j;
  try {
    j = Json::parse(ss.str());
  } catch (const Json::exception& e) {
    malformed(path, std::string("not JSON: ") + e.what());
  }
  if (!j.is_object()) malformed(path, "expected a JSON object at the top level");
  std::string format = string_member(j, "format", "", path);
  if (format != kFormat) malformed(path, "format '" + format + "', expected '" + std::string(kFormat) + "'");
  Baselines b;
  b.config = string_member(j, "config", "", path);
  const Json& fp = object_member(j, "fingerprint", "", path);
  for (const auto& [part, label] : kParts) b.fingerprint.parts[part] = string_member(fp, part, "fingerprint.", path);
  const Json& tasks = object_member(j, "tasks", "", path);
  if (tasks.empty()) malformed(path, "'tasks' is empty");
  for (auto it = tasks.begin(); it != tasks.end(); ++it) {
    const std::string name = it.key();
    const Json& t = it.value();
    const std::string at = "tasks." + name + ".";
    if (!t.is_object()) malformed(path, "'tasks." + name + "' should be an object");
    b.fingerprint.tasks[name] = string_member(t, "fingerprint", at, path);
    b.run_dirs[name] = string_member(t, "run_dir", at, path);
    b.steps[name] = static_cast<int64_t>(number_member(t, "steps", at, path));
    TaskResult tr;
    tr.task = name;
    tr.loss = number_member(t, "loss", at, path);
    tr.examples = static_cast<int64_t>(number_member(t, "examples", at, path));
    const Json& metrics = object_member(t, "metrics", at, path);
    for (auto mit = metrics.begin(); mit != metrics.end(); ++mit) {
      const std::string metric = mit.key();
      const Json& m = mit.value();
      const std::string mat = at + "metrics." + metric + ".";
      const Json& hib = member(m, "higher_is_better", mat, path);
      if (!hib.is_boolean()) malformed(path, "'" + mat + "higher_is_better' should be true or false");
      tr.metrics.push_back({metric, number_member(m, "value", mat, path), hib.get<bool>()});
    }
    b.results.tasks.push_back(tr);
  }
  return b;
}

void write_baselines(const Baselines& b, const std::string& path) {
  Json j;
  j["format"] = kFormat;
  j["config"] = b.config;
  j["delta_m"] = "mean over tasks and metrics of s*(M_mt - M_b)/|M_b|*100, s = +1 if higher is better else -1: "
                 "positive = multi-task better";
  Json fp = Json::object();
  for (const auto& [part, label] : kParts) fp[part] = b.fingerprint.parts.count(part) ? b.fingerprint.parts.at(part) : "";
  j["fingerprint"] = fp;
  Json tasks = Json::object();
  for (const auto& tr : b.results.tasks) {
    Json t;
    auto get = [&](const auto& m, const auto& fallback) { return m.count(tr.task) ? m.at(tr.task) : fallback; };
    t["run_dir"] = get(b.run_dirs, std::string());
    t["steps"] = get(b.steps, int64_t{0});
    t["examples"] = tr.examples;
    t["loss"] = tr.loss;
    Json metrics = Json::object();
    for (const auto& m : tr.metrics) metrics[m.name] = Json{{"value", m.value}, {"higher_is_better", m.higher_is_better}};
    t["metrics"] = metrics;
    t["fingerprint"] = get(b.fingerprint.tasks, std::string());
    tasks[tr.task] = t;
  }
  j["tasks"] = tasks;
  fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) ensure_writable_dir(parent.string());
  write_file_atomic(path, j.dump(2) + "\n");
}

std::vector<std::string> baseline_mismatches(const Baselines& b, const RunConfig& rc) {
  BaselineFingerprint now = baseline_fingerprint(rc.source);
  std::vector<std::string> why;
  for (const auto& [part, label] : kParts) {
    auto it = b.fingerprint.parts.find(part);
    const std::string have = it == b.fingerprint.parts.end() ? "" : it->second;
    const std::string& want = now.parts[part];
    if (have != want) why.push_back(label + " differs (baselines: " + have + "; config: " + want + ")");
  }
  for (const auto& t : rc.tasks) {
    auto it = b.fingerprint.tasks.find(t.name);
    if (it == b.fingerprint.tasks.end())
      why.push_back("no baseline for task '" + t.name + "'");
    else if (it->second != now.tasks[t.name])
      why.push_back("task '" + t.name + "' differs (baselines: " + it->second + "; config: " + now.tasks[t.name] + ")");
  }
  return why;
}

Config single_task_config(const RunConfig& rc, const std::string& task) {
  YAML::Node doc = YAML::Clone(rc.source.resolved());
  YAML::Node all = doc["tasks"];
  if (!all.IsMap() || !all[task]) throw Error(rc.source.file(), "no task '" + task + "' in this config");
  YAML::Node tasks(YAML::NodeType::Map);
  tasks[task] = without(all[task], "weight");  // one task: a loss weight would only rescale the learning rate
  doc["tasks"] = tasks;
  if (doc["datasets"] && tasks[task]["dataset"]) {  // only the task's own dataset
    const std::string own = tasks[task]["dataset"].Scalar();
    YAML::Node datasets(YAML::NodeType::Map);
    datasets[own] = doc["datasets"][own];
    doc["datasets"] = datasets;
    doc.remove("task_sampler");
  }
  std::vector<std::string> others;
  for (const auto& t : rc.tasks)
    if (t.name != task) others.push_back(t.name);
  keep_own_head(doc, task, others);
  if (doc["model"] && doc["model"].IsMap()) doc["model"].remove("architecture");  // one task: one network
  YAML::Node weighting(YAML::NodeType::Map);
  weighting["method"] = "ew";
  doc["weighting"] = weighting;
  doc["trainer"]["run_dir"] = task_run_dir(rc, task);
  doc["baselines"] = "none";
  YAML::Emitter out;
  out << doc;
  return Config::from_string(std::string(out.c_str()) + "\n", rc.source.file() + " [baseline " + task + "]");
}

BaselinesRun run_baselines(const RunConfig& rc, const BaselinesRunOptions& options) {
  if (rc.baselines.path.empty())
    throw Error(rc.source.root().where("baselines"), "baselines is 'none': set a file path or 'auto' to write baselines");
  if (rc.tasks.size() < 2)
    throw Error(rc.source.file(), "single-task baselines need a config with at least 2 tasks, this one has " +
                                      std::to_string(rc.tasks.size()) + " (a single-task run is its own baseline)");
  // Build every single-task experiment once first, so a problem stops before any training.
  for (const auto& t : rc.tasks) assemble(single_task_config(rc, t.name));

  BaselinesRun run;
  run.path = rc.baselines.path;
  Baselines& b = run.baselines;
  b.config = rc.source.file();
  b.fingerprint = baseline_fingerprint(rc.source);
  for (size_t i = 0; i < rc.tasks.size(); ++i) {
    const std::string& name = rc.tasks[i].name;
    // Built right before training, as `mtl train` would.
    Run single = assemble(single_task_config(rc, name));
    single.config.name = rc.name + "." + name;
    std::cerr << "mtl: baseline " << (i + 1) << "/" << rc.tasks.size() << ": single-task model for '" << name
              << "', " << single.config.engine.threads << " thread(s)\n";
    TrainSummary s = train(single, TrainRunOptions{"", options.progress});
    if (s.interrupted) {
      run.interrupted = true;
      return run;
    }
    b.results.tasks.push_back(s.final_eval.tasks.at(0));
    b.run_dirs[name] = s.run_dir;
    b.steps[name] = s.steps;
  }
  write_baselines(b, run.path);
  return run;
}

BaselinesLookup find_baselines(const RunConfig& rc) {
  BaselinesLookup lk;
  lk.path = rc.baselines.path;
  if (lk.path.empty()) return lk;
  if (!fs::exists(lk.path)) {
    if (rc.baselines.explicit_path)
      lk.note = "no baselines file " + lk.path + " yet (write it with `mtl baselines " + rc.source.file() + "`)";
    return lk;
  }
  Baselines b = read_baselines(lk.path);
  std::vector<std::string> why = baseline_mismatches(b, rc);
  if (!why.empty()) {
    lk.note = "baselines file " + lk.path + " does not match this config: " + join(why, "; ") +
              " (rerun `mtl baselines " + rc.source.file() + "`)";
    return lk;
  }
  lk.baselines = std::move(b);
  return lk;
}

std::string attach_baselines(EvalResult& result, const RunConfig& rc) {
  BaselinesLookup found = find_baselines(rc);
  if (found.baselines) attach_delta_m(result, *found.baselines);
  return found.note;
}

void attach_delta_m(EvalResult& result, const Baselines& b) {
  result.delta_m = delta_m(result.scores(), b.results.scores());
}

}  // namespace mtl
