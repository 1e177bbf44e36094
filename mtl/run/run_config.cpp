#include "mtl/run/run_config.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

namespace mtl {

namespace {

bool valid_name(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  return true;
}

// A positive thread count, or "auto" for `automatic`.
int64_t thread_count(const ConfigNode& n, const std::string& key, int64_t automatic) {
  std::string text = n.get<std::string>(key, "auto");
  if (text == "auto") return automatic;
  char* end = nullptr;
  long v = std::strtol(text.c_str(), &end, 10);
  n.check(*end == '\0' && v > 0 && v <= 1024, key, "expected a positive thread count or 'auto', got '" + text + "'");
  return v;
}

// `trainer:`; the thread counts go to the engine's options.
TrainerOptions parse_trainer(const ConfigNode& n, const std::string& name, EngineOptions& engine) {
  TrainerOptions o;
  o.epochs = non_negative<int64_t>(n, "epochs", o.epochs);
  o.max_steps = non_negative<int64_t>(n, "max_steps", o.max_steps);
  n.check(o.epochs > 0 || o.max_steps > 0, "epochs", "set epochs > 0 or max_steps > 0");
  o.batch_size = positive<int64_t>(n, "batch_size", o.batch_size);
  o.eval_batch_size = positive<int64_t>(n, "eval_batch_size", o.eval_batch_size);
  const int64_t cores = process_cores();  // a distributed rank's share of this machine
  engine.threads = static_cast<int>(thread_count(n, "threads", cores));
  engine.intra_op_threads =
      static_cast<int>(thread_count(n, "intra_op_threads", std::max<int64_t>(1, cores / engine.threads)));
  engine.probe_plan = n.get<std::string>("threads", "auto") == "auto" &&
                      n.get<std::string>("intra_op_threads", "auto") == "auto" && cores > 1;
  o.loader_workers = in_range<int64_t>(n, "loader_workers", o.loader_workers, 0, 64);
  o.prefetch = in_range<int64_t>(n, "prefetch", o.prefetch, 1, 1024);
  o.seed = n.get<int64_t>("seed", o.seed);
  engine.seed = static_cast<uint64_t>(o.seed);
  o.run_dir = n.get<std::string>("run_dir", "runs/" + name);
  n.check(!o.run_dir.empty(), "run_dir", "expected a directory path");
  o.eval_interval = non_negative<int64_t>(n, "eval_interval", o.eval_interval);
  o.checkpoint_interval = non_negative<int64_t>(n, "checkpoint_interval", o.checkpoint_interval);
  o.log_interval = positive<int64_t>(n, "log_interval", o.log_interval);
  o.log_weights = n.get<bool>("log_weights", o.log_weights);
  o.deterministic = n.get<bool>("deterministic", o.deterministic);
  o.drop_last = n.get<bool>("drop_last", o.drop_last);
  o.length_bucketing = n.get<bool>("length_bucketing", o.length_bucketing);
  o.auto_resume = n.choice("resume", "never", {"never", "auto"}) == "auto";
  o.skip_nonfinite = n.choice("on_nonfinite", "stop", {"stop", "skip"}) == "skip";
  o.max_skipped = positive<int64_t>(n, "max_skipped", o.max_skipped);
  engine.keep_state_on_skip = o.skip_nonfinite;
  if (n.choice("precision", "float32", {"float32", "bf16"}) == "bf16") {
    if (cpu_has_bf16()) {
      engine.precision = Precision::kBFloat16;
    } else {  // LibTorch would emulate bfloat16: slower than float32, and less exact
      o.precision_warning = n.where("precision") +
                            ": this CPU has no bfloat16 instructions (avx512_bf16 or amx_bf16); training in float32";
    }
  }
  return o;
}

// `engine:`; async (Hogwild!) shard updates have no per-shard meaning for penalties, clipping and max-norm.
void parse_engine(const ConfigNode& n, const OptimizerOptions& optimizer, EngineOptions& o) {
  o.async = n.choice("mode", "sync", {"sync", "async"}) == "async";
  o.dynamic_balance = n.choice("balance", "static", {"static", "dynamic"}) == "dynamic";
  o.lookahead = n.get<bool>("lookahead", o.lookahead);
  const std::string mp = n.choice("model_parallel", "none", {"none", "tasks", "pipeline"});
  o.model_parallel = mp == "tasks" ? ModelParallel::kTasks : mp == "pipeline" ? ModelParallel::kPipeline : ModelParallel::kNone;
  if (o.model_parallel != ModelParallel::kNone) {
    o.model_threads = static_cast<int>(in_range<int64_t>(n, "model_threads", o.threads, 1, o.threads));
    n.check(o.threads % o.model_threads == 0, "model_threads",
            "expected a divisor of trainer.threads (" + std::to_string(o.threads) + "): threads / model_threads "
            "copies of the model train data-parallel shards, got " + std::to_string(o.model_threads));
    n.check(!o.async, "model_parallel", "model parallelism needs engine.mode sync");
    n.check(!o.dynamic_balance, "model_parallel", "model parallelism splits batches statically (balance: static)");
    o.probe_plan = false;  // the thread counts are the model split's: no probing of other plans
  } else {
    n.check(!n.has("model_threads"), "model_threads", "model_threads applies to model_parallel: tasks or pipeline");
  }
  if (o.model_parallel == ModelParallel::kPipeline)
    o.micro_batches = static_cast<int>(in_range<int64_t>(n, "micro_batches", 4 * o.model_threads, 1, 4096));
  else
    n.check(!n.has("micro_batches"), "micro_batches", "micro_batches applies to model_parallel: pipeline");
  if (!o.async) return;
  n.check(!o.keep_state_on_skip, "mode",
          "trainer.on_nonfinite: skip needs engine.mode sync (async workers apply their updates on their own)");
  n.check(optimizer.type == "sgd", "mode",
          "async (Hogwild!) updates support optimizer.type sgd only, got '" + optimizer.type + "'");
  n.check(!optimizer.regularisation.any(), "mode",
          "async (Hogwild!) updates support no penalties, clipping or constraints (l1, l2, clip_grad_*, max_norm); "
          "use engine.mode sync");
  for (const auto& g : optimizer.groups)
    n.check(!g.regularisation.any(), "mode",
            "async (Hogwild!) updates support no penalties, clipping or constraints in optimizer.groups (l1, l2, "
            "clip_grad_*, max_norm); use engine.mode sync");
}

// `diagnostics: {every: N}`: gradient diagnostics every N steps (mtl/engine/diagnostics.h).
void parse_diagnostics(const ConfigNode& n, EngineOptions& o) {
  o.diagnostics_every = non_negative<int64_t>(n, "every", 0);
  n.check(o.diagnostics_every == 0 || o.model_parallel == ModelParallel::kNone, "every",
          "gradient diagnostics need data parallelism (engine.model_parallel: none)");
  n.check(o.diagnostics_every == 0 || !o.async, "every",
          "gradient diagnostics need engine.mode sync (the async engine applies each shard's update on its own)");
}

// `meta:` (mtl/run/meta_trainer.h); what depends on the data (classes, episode sizes) is checked by the
// episode sampler when the run starts.
MetaConfig parse_meta(const ConfigNode& root) {
  MetaConfig m;
  if (!root.has("meta")) return m;
  const ConfigNode n = root.child("meta");
  m.enabled = true;
  m.node = n;
  const std::string method = n.choice("method", "maml", {"maml", "fomaml", "reptile"});
  m.inner.method = method == "maml" ? MetaMethod::kMaml : method == "fomaml" ? MetaMethod::kFomaml : MetaMethod::kReptile;
  m.inner.steps = in_range<int64_t>(n, "inner_steps", m.inner.steps, 1, 1000);
  m.inner.lr = positive<double>(n, "inner_lr", m.inner.lr);
  m.meta_batch_tasks = in_range<int64_t>(n, "meta_batch_tasks", m.meta_batch_tasks, 1, 100000);
  m.steps = positive<int64_t>(n, "steps", m.steps);
  m.episodes.ways = in_range<int64_t>(n, "ways", m.episodes.ways, 0, 100000);
  n.check(m.episodes.ways != 1, "ways", "expected 0 (the task as it is) or at least 2 classes per episode, got 1");
  m.episodes.support = positive<int64_t>(n, "support", m.episodes.support);
  m.episodes.query = positive<int64_t>(n, "query", m.episodes.query);
  m.class_keys = n.get<std::vector<std::string>>("classes", {});
  m.test_class_keys = n.get<std::vector<std::string>>("test_classes", {});
  for (const char* key : {"classes", "test_classes"}) {
    const std::vector<std::string>& v = std::string(key) == "classes" ? m.class_keys : m.test_class_keys;
    std::set<std::string> seen;
    for (const std::string& c : v) {
      n.check(!c.empty() && c[0] != '-', key, "expected class indices (>= 0) or class names, got '" + c + "'");
      n.check(seen.insert(c).second, key, "class " + c + " is listed twice");
    }
    n.check(m.episodes.ways > 0 || v.empty(), key, std::string(key) + " needs ways > 0 (N-way episodes)");
    n.check(v.empty() || static_cast<int64_t>(v.size()) >= m.episodes.ways, key,
            "expected at least ways = " + std::to_string(m.episodes.ways) + " classes, got " + std::to_string(v.size()));
  }
  m.test_episodes = positive<int64_t>(n, "test_episodes", m.test_episodes);
  m.test_inner_steps = in_range<int64_t>(n, "test_inner_steps", m.inner.steps, 0, 100000);
  m.eval_interval = non_negative<int64_t>(n, "eval_interval", m.eval_interval);
  const StringOrList adapt = string_or_list(n, "adapt", "heads", "heads, all, or a list of parameter-name patterns");
  n.check(!adapt.items.empty(), "adapt", "expected heads, all, or a list of parameter-name patterns");
  m.adapt = adapt.items;
  return m;
}

TaskSamplerOptions parse_task_sampler(const ConfigNode& n, const std::vector<std::string>& datasets) {
  TaskSamplerOptions o;
  o.type = n.choice("type", o.type, {"proportional", "uniform", "temperature", "round_robin", "given"});
  if (o.type == "temperature") o.temperature = positive<double>(n, "temperature", o.temperature);
  if (o.type == "given") {
    ConfigNode p = n.child("probabilities");
    for (const auto& k : n.keys("probabilities"))
      if (std::find(datasets.begin(), datasets.end(), k) == datasets.end())
        p.fail(k, "no dataset '" + k + "'" + did_you_mean(k, datasets) + "; datasets: " + join(datasets));
    double sum = 0;
    for (const auto& d : datasets) {
      n.check(p.has(d), "probabilities", "expected a probability for every dataset; '" + d + "' has none");
      o.probabilities.push_back(non_negative<double>(p, d, 0.0));
      sum += o.probabilities.back();
    }
    n.check(std::abs(sum - 1.0) < 1e-6, "probabilities", "expected probabilities that sum to 1, got " + std::to_string(sum));
  }
  o.steps_per_epoch = non_negative<int64_t>(n, "steps_per_epoch", o.steps_per_epoch);
  return o;
}

DataConfig parse_data(const ConfigNode& root) {
  DataConfig d;
  if (!root.has("datasets")) {
    d.nodes.push_back(root.component("data"));
    return d;
  }
  if (root.has("data")) root.fail("data", "give either `data:` (one dataset) or `datasets:` (named datasets), not both");
  d.names = root.keys("datasets");
  if (d.names.empty()) root.fail("datasets", "expected a map of named datasets, e.g. datasets: {fashion: {type: multi_fashion}}");
  ConfigNode all = root.child("datasets");
  for (const auto& name : d.names) {
    if (!valid_name(name)) all.fail(name, "dataset names may use letters, digits, '_' and '-' only, got '" + name + "'");
    d.nodes.push_back(all.component(name));
  }
  d.task_sampler = parse_task_sampler(root.child("task_sampler"), d.names);
  return d;
}

TaskConfig parse_task(const ConfigNode& tasks, const std::string& name, const DataConfig& data) {
  if (!valid_name(name)) tasks.fail(name, "task names may use letters, digits, '_' and '-' only, got '" + name + "'");
  TaskConfig tc;
  tc.name = name;
  tc.node = tasks.child(name);
  tc.label = tc.node.get<std::string>("label", name);
  if (data.mixture()) {
    const auto& names = data.names;
    tc.dataset = names.size() == 1 ? tc.node.get<std::string>("dataset", names[0]) : tc.node.get<std::string>("dataset", "");
    if (tc.dataset.empty())
      tc.node.fail("dataset", "expected the name of the dataset this task learns from, one of: " + join(names));
    if (std::find(names.begin(), names.end(), tc.dataset) == names.end())
      tc.node.fail("dataset", "no dataset '" + tc.dataset + "'" + did_you_mean(tc.dataset, names) +
                                  "; datasets: " + join(names));
  }
  return tc;
}

std::vector<TaskConfig> parse_tasks(const ConfigNode& root, const DataConfig& data) {
  std::vector<std::string> names = root.keys("tasks");
  if (names.empty()) root.fail("tasks", "expected a map of at least one task, e.g. tasks: {left: {label: left}}");
  ConfigNode tasks = root.child("tasks");
  std::vector<TaskConfig> out;
  for (const auto& name : names) out.push_back(parse_task(tasks, name, data));
  for (const auto& d : data.names) {
    bool used = std::any_of(out.begin(), out.end(), [&](const TaskConfig& t) { return t.dataset == d; });
    if (!used) root.child("datasets").fail(d, "no task learns from dataset '" + d + "' (add one with `dataset: " + d +
                                                  "`, or remove the dataset)");
  }
  return out;
}

}  // namespace

std::vector<std::string> RunConfig::task_names() const {
  std::vector<std::string> out;
  for (const auto& t : tasks) out.push_back(t.name);
  return out;
}

std::string default_baselines_path(const std::string& run_dir) {
  std::string base = run_dir;
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  return base + ".baselines/baselines.json";
}

int64_t physical_cores() {
  // Count distinct (physical id, core id) pairs; hyper-threads share a core.
  std::ifstream in("/proc/cpuinfo");
  std::set<std::pair<std::string, std::string>> cores;
  std::string line, phys = "0";
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, line.find_last_not_of(" \t", colon - 1) + 1);
    std::string val = line.substr(colon + 1);
    if (!val.empty() && val[0] == ' ') val.erase(0, 1);
    if (key == "physical id") phys = val;
    if (key == "core id") cores.insert({phys, val});
  }
  int64_t logical = std::max(1u, std::thread::hardware_concurrency());
  if (cores.empty()) return logical;
  return std::min<int64_t>(logical, static_cast<int64_t>(cores.size()));
}

int64_t process_cores() {
  int64_t local = 1;
  if (const char* v = std::getenv("LOCAL_WORLD_SIZE"); v && *v) {
    char* end = nullptr;
    const long n = std::strtol(v, &end, 10);
    if (*end == '\0' && n > 0) local = n;  // a malformed value is reported by the launcher's checks
  }
  return std::max<int64_t>(1, physical_cores() / local);
}

RunConfig parse_run_config(const Config& config, const ParseOptions& options) {
  RunConfig rc;
  rc.source = config;
  rc.name = std::filesystem::path(config.file()).stem().string();
  if (rc.name.empty() || rc.name == "<string>") rc.name = "run";
  ConfigNode root = config.root();
  // Cheap sections first, so their mistakes surface before anything is built.
  rc.trainer = parse_trainer(root.child("trainer"), rc.name, rc.engine);
  rc.logging.tensorboard = root.child("logging").get<bool>("tensorboard", false);
  rc.optimizer = parse_optimizer_options(root.component("optimizer", "sgd"));
  rc.engine_node = root.child("engine");
  parse_engine(rc.engine_node, rc.optimizer, rc.engine);
  parse_diagnostics(root.child("diagnostics"), rc.engine);
  rc.meta = parse_meta(root);
  ConfigNode sweep = root.child("sweep");
  rc.sweep.grid = sweep.get<std::vector<std::string>>("grid", {});
  rc.sweep.seeds = in_range<int64_t>(sweep, "seeds", 1, 1, 1000);
  rc.sweep.dir = sweep.get<std::string>("dir", "");
  rc.distributed = parse_distributed_options(root.child("distributed"));
  rc.scheduler = parse_scheduler_options(root.component("scheduler", "constant"));
  rc.freeze_node = root.child("freeze");
  rc.freeze = parse_freeze_options(rc.freeze_node);
  std::string baselines = root.get<std::string>("baselines", "auto");
  root.check(!baselines.empty(), "baselines", "expected a file path, 'auto' or 'none'");
  rc.baselines.explicit_path = baselines != "auto" && baselines != "none";
  if (baselines == "auto") rc.baselines.path = default_baselines_path(rc.trainer.run_dir);
  if (rc.baselines.explicit_path) rc.baselines.path = baselines;
  rc.data = parse_data(root);
  rc.tokenizer = root.child("tokenizer");
  rc.tasks = parse_tasks(root, rc.data);
  rc.weighting.node = root.child("weighting");
  rc.weighting.method = rc.weighting.node.get<std::string>("method", "ew");
  ConfigNode model = root.child("model");
  rc.model.architecture = model.component("architecture", "hps");
  rc.model.backbone = model.component("backbone");
  rc.model.init = parse_model_init(model, rc.task_names(), options.check_init_path);
  return rc;
}

}  // namespace mtl
