#include "mtl/engine/experiment.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "mtl/data/mixture.h"
#include "mtl/engine/model_init.h"

namespace mtl {

namespace {

bool valid_task_name(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  return true;
}

bool kind_in(LabelKind k, const std::vector<LabelKind>& kinds) {
  for (auto x : kinds)
    if (x == k) return true;
  return false;
}

std::string kinds_text(const std::vector<LabelKind>& kinds) {
  std::vector<std::string> s;
  for (auto k : kinds) s.push_back(to_string(k));
  return join(s, " or ");
}

std::string default_head_for(LabelKind k) {
  switch (k) {
    case LabelKind::kClass: return "classification";
    case LabelKind::kMultiLabel: return "multilabel";
    case LabelKind::kReal: return "regression";
    case LabelKind::kTokenClass: return "token_classification";
  }
  return "classification";
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

TrainerOptions parse_trainer(const ConfigNode& n, const std::string& name) {
  TrainerOptions o;
  o.epochs = non_negative<int64_t>(n, "epochs", o.epochs);
  o.max_steps = non_negative<int64_t>(n, "max_steps", o.max_steps);
  n.check(o.epochs > 0 || o.max_steps > 0, "epochs", "set epochs > 0 or max_steps > 0");
  o.batch_size = positive<int64_t>(n, "batch_size", o.batch_size);
  o.eval_batch_size = positive<int64_t>(n, "eval_batch_size", o.eval_batch_size);
  o.threads = thread_count(n, "threads", physical_cores());
  o.intra_op_threads = thread_count(n, "intra_op_threads", std::max<int64_t>(1, physical_cores() / o.threads));
  o.loader_workers = in_range<int64_t>(n, "loader_workers", o.loader_workers, 0, 64);
  o.prefetch = in_range<int64_t>(n, "prefetch", o.prefetch, 1, 1024);
  o.seed = n.get<int64_t>("seed", o.seed);
  o.run_dir = n.get<std::string>("run_dir", "runs/" + name);
  n.check(!o.run_dir.empty(), "run_dir", "expected a directory path");
  o.eval_interval = non_negative<int64_t>(n, "eval_interval", o.eval_interval);
  o.checkpoint_interval = non_negative<int64_t>(n, "checkpoint_interval", o.checkpoint_interval);
  o.log_interval = positive<int64_t>(n, "log_interval", o.log_interval);
  o.log_weights = n.get<bool>("log_weights", o.log_weights);
  o.deterministic = n.get<bool>("deterministic", o.deterministic);
  o.drop_last = n.get<bool>("drop_last", o.drop_last);
  o.length_bucketing = n.get<bool>("length_bucketing", o.length_bucketing);
  return o;
}

TaskSamplerOptions parse_task_sampler(const ConfigNode& n, const std::vector<std::string>& datasets) {
  TaskSamplerOptions o;
  o.type = n.choice("type", o.type, {"proportional", "uniform", "temperature", "round_robin", "given"});
  if (o.type == "temperature") o.temperature = positive<double>(n, "temperature", o.temperature);
  if (o.type == "given") {
    ConfigNode p = n.child("probabilities");
    std::vector<std::string> keys = n.keys("probabilities");
    for (const auto& k : keys)
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

TaskSpec parse_task(const ConfigNode& tasks_node, const std::string& name, const DatasetSchema& schema,
                    const std::vector<std::string>& datasets, const MixtureSource* mixture) {
  ConfigNode t = tasks_node.child(name);
  if (!valid_task_name(name))
    tasks_node.fail(name, "task names may use letters, digits, '_' and '-' only, got '" + name + "'");
  TaskSpec spec;
  spec.name = name;
  std::string label_name = t.get<std::string>("label", name);
  const LabelInfo* label = nullptr;
  if (mixture) {
    spec.dataset = datasets.size() == 1 ? t.get<std::string>("dataset", datasets[0]) : t.get<std::string>("dataset", "");
    if (spec.dataset.empty())
      t.fail("dataset", "expected the name of the dataset this task learns from, one of: " + join(datasets));
    auto it = std::find(datasets.begin(), datasets.end(), spec.dataset);
    if (it == datasets.end())
      t.fail("dataset", "no dataset '" + spec.dataset + "'" + did_you_mean(spec.dataset, datasets) +
                            "; datasets: " + join(datasets));
    const DatasetSchema& own = mixture->part_schema(static_cast<size_t>(it - datasets.begin()));
    if (!own.label(label_name)) {
      auto names = own.label_names();
      t.fail("label", "dataset '" + spec.dataset + "' has no label field '" + label_name + "'" +
                          did_you_mean(label_name, names) + "; it has: " + join(names));
    }
    label = schema.label(mixture_label(spec.dataset, label_name));
  } else {
    label = schema.label(label_name);
  }
  if (!label) {
    auto names = schema.label_names();
    t.fail("label", "the dataset has no label field '" + label_name + "'" + did_you_mean(label_name, names) +
                        "; it has: " + join(names));
  }
  spec.label = *label;
  spec.head_type = t.get<std::string>("type", default_head_for(label->kind));
  const HeadEntry& head = head_registry().get(spec.head_type, t.where("type"));
  if (head.label_kind != label->kind)
    t.fail("type", "head '" + spec.head_type + "' needs " + to_string(head.label_kind) + " labels, but label '" +
                       label_name + "' holds " + to_string(label->kind) + " values");
  spec.weight = non_negative<double>(t, "weight", 1.0);

  ConfigNode loss = t.component("loss", head.default_loss);
  spec.loss_type = loss.type();
  const LossEntry& le = loss_registry().get(spec.loss_type, loss.where("type"));
  if (!kind_in(label->kind, le.label_kinds))
    loss.fail("type", "loss '" + spec.loss_type + "' needs " + kinds_text(le.label_kinds) +
                          " labels; label '" + label_name + "' holds " + to_string(label->kind) + " values");
  spec.loss = le.make(loss, *label);

  std::vector<ConfigNode> metric_nodes = t.components("metrics", head.default_metrics);
  std::set<std::string> seen;
  for (const auto& m : metric_nodes) {
    std::string type = m.type();
    const MetricEntry& me = metric_registry().get(type, m.where("type"));
    if (!kind_in(label->kind, me.label_kinds))
      m.fail("type", "metric '" + type + "' needs " + kinds_text(me.label_kinds) + " labels; label '" +
                         label_name + "' holds " + to_string(label->kind) + " values");
    auto probe = me.make(m, *label);  // validates the options now
    if (!seen.insert(probe->name()).second) m.fail("", "metric '" + probe->name() + "' is listed twice");
  }
  LabelInfo li = *label;
  spec.make_metrics = [metric_nodes, li]() {
    std::vector<std::unique_ptr<Metric>> out;
    for (const auto& m : metric_nodes) out.push_back(metric_registry().get(m.type()).make(m, li));
    return out;
  };
  return spec;
}

}  // namespace

std::vector<std::string> Experiment::task_names() const {
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

ParamGroups make_param_groups(const Experiment& ex) {
  NamedParameters named;
  for (const auto& kv : ex.model->named_parameters()) named.emplace_back(kv.key(), kv.value());
  return ParamGroups(ex.optimizer, ex.scheduler, named, backbone_blocks(*ex.model), ex.weighting->parameters());
}

void save_data_artifacts(const Experiment& ex, const std::string& run_dir) {
  namespace fs = std::filesystem;
  if (ex.tokenizer) ex.tokenizer->save((fs::path(run_dir) / "tokenizer").string());
  ex.data->save_artifacts((fs::path(run_dir) / "data").string());
}

Experiment build_experiment(const Config& config, const BuildOptions& options) {
  Experiment ex;
  ex.config = config;
  ex.name = std::filesystem::path(config.file()).stem().string();
  if (ex.name.empty() || ex.name == "<string>") ex.name = "run";
  ConfigNode root = config.root();

  // Cheap sections first, so their mistakes surface before anything is built.
  ex.trainer = parse_trainer(root.child("trainer"), ex.name);
  ex.optimizer = parse_optimizer_options(root.component("optimizer", "sgd"));
  ConfigNode engine = root.child("engine");
  ex.trainer.mode = engine.choice("mode", ex.trainer.mode, {"sync", "async"});
  ex.trainer.balance = engine.choice("balance", ex.trainer.balance, {"static", "dynamic"});
  ex.trainer.lookahead = engine.get<bool>("lookahead", ex.trainer.lookahead);
  if (ex.trainer.mode == "async")
    engine.check(ex.optimizer.type == "sgd", "mode",
                 "async (Hogwild!) updates support optimizer.type sgd only, got '" + ex.optimizer.type + "'");
  ex.scheduler = parse_scheduler_options(root.component("scheduler", "constant"));
  if (ex.trainer.mode == "async") {
    const OptimizerOptions& o = ex.optimizer;
    engine.check(o.groups.empty() && !o.regularisation.any() && o.backbone_lr_scale == 1.0 && o.layer_lr_decay == 1.0,
                 "mode", "async (Hogwild!) updates support one learning rate and no penalties, clipping or "
                         "constraints (optimizer.groups, backbone_lr_scale, layer_lr_decay, l1, l2, clip_grad_*, "
                         "max_norm); use engine.mode sync");
  }
  ConfigNode freeze = root.child("freeze");
  ex.freeze = parse_freeze_options(freeze);
  std::string baselines = root.get<std::string>("baselines", "auto");
  root.check(!baselines.empty(), "baselines", "expected a file path, 'auto' or 'none'");
  ex.baselines_explicit = baselines != "auto" && baselines != "none";
  if (baselines == "auto") ex.baselines = default_baselines_path(ex.trainer.run_dir);
  if (ex.baselines_explicit) ex.baselines = baselines;

  // Data: one `data:` dataset, or named `datasets:` whose tasks a task sampler interleaves.
  std::shared_ptr<MixtureSource> mixture;
  if (root.has("datasets")) {
    if (root.has("data")) root.fail("data", "give either `data:` (one dataset) or `datasets:` (named datasets), not both");
    ex.dataset_names = root.keys("datasets");
    if (ex.dataset_names.empty()) root.fail("datasets", "expected a map of named datasets, e.g. datasets: {fashion: {type: multi_fashion}}");
    ConfigNode all = root.child("datasets");
    std::vector<std::shared_ptr<DatasetSource>> parts;
    for (const auto& name : ex.dataset_names) {
      if (!valid_task_name(name))
        all.fail(name, "dataset names may use letters, digits, '_' and '-' only, got '" + name + "'");
      ConfigNode d = all.component(name);
      parts.push_back(dataset_registry().get(d.type(), d.where("type"))(d));
    }
    mixture = std::make_shared<MixtureSource>(ex.dataset_names, parts);
    ex.data = mixture;
    ex.task_sampler = parse_task_sampler(root.child("task_sampler"), ex.dataset_names);
  } else {
    ConfigNode data = root.component("data");
    ex.data = dataset_registry().get(data.type(), data.where("type"))(data);
  }
  namespace fs = std::filesystem;
  if (!options.artifacts_dir.empty()) ex.data->load_artifacts((fs::path(options.artifacts_dir) / "data").string());
  if (ex.data->needs_tokenizer()) {
    ConfigNode tok = root.child("tokenizer");
    TokenizerOptions topts = parse_tokenizer_options(tok);
    std::string saved = (fs::path(options.artifacts_dir) / "tokenizer").string();
    if (!options.artifacts_dir.empty()) {
      ex.tokenizer = load_tokenizer(saved);
    } else {
      std::shared_ptr<DatasetSource> source = ex.data;
      ex.tokenizer = make_tokenizer(topts, [source](const std::function<void(const std::string&)>& visit) {
        source->for_each_training_text(visit);
      });
    }
    ex.data->set_tokenizer(ex.tokenizer);
  }
  ex.schema = ex.data->schema();

  std::vector<std::string> names = root.keys("tasks");
  if (names.empty()) root.fail("tasks", "expected a map of at least one task, e.g. tasks: {left: {label: left}}");
  ConfigNode tasks = root.child("tasks");
  for (const auto& name : names)
    ex.tasks.push_back(parse_task(tasks, name, ex.schema, ex.dataset_names, mixture.get()));
  for (const auto& d : ex.dataset_names) {
    bool used = std::any_of(ex.tasks.begin(), ex.tasks.end(), [&](const TaskSpec& t) { return t.dataset == d; });
    if (!used) root.child("datasets").fail(d, "no task learns from dataset '" + d + "' (add one with `dataset: " + d +
                                                  "`, or remove the dataset)");
  }

  ConfigNode w = root.child("weighting");
  std::string method = w.get<std::string>("method", "ew");
  WeightingContext wctx;
  for (const auto& t : ex.tasks) {
    wctx.task_names.push_back(t.name);
    wctx.task_weights.push_back(t.weight);
  }
  ex.weighting = weighting_registry().get(method, w.where("method"))(w, wctx);
  if (ex.trainer.mode == "async")
    w.check(ex.weighting->needs() == GradientKind::kWeightedLoss, "method",
            "engine.mode async works with loss-based weighting methods only; '" + method +
                "' needs per-task gradients (use engine.mode sync)");
  if (ex.trainer.mode == "async")
    w.check(!ex.weighting->needs_losses_after_step(), "method",
            "engine.mode async does not re-evaluate batches after each update as '" + method +
                "' needs (use engine.mode sync)");
  if (ex.trainer.mode == "async")
    w.check(ex.weighting->parameters().empty(), "method",
            "engine.mode async does not train a weighting method's own parameters; '" + method +
                "' learns some (use engine.mode sync)");

  // Same seed => same initial weights.
  torch::manual_seed(static_cast<uint64_t>(ex.trainer.seed));
  ConfigNode model = root.child("model");
  ConfigNode bb = model.component("backbone");
  const BackboneFactory& make_backbone = backbone_registry().get(bb.type(), bb.where("type"));
  // model.init: weights from an earlier run or a safetensors file. Eval, predict and resume load the run's own
  // checkpoint instead (the init file may be gone by then), so they neither check the path nor import.
  std::optional<ModelInit> init = parse_model_init(model, ex.task_names(), options.artifacts_dir.empty());
  std::vector<std::string> names_in_order = ex.task_names();
  std::vector<std::string> head_types;
  std::vector<LabelInfo> labels;
  for (const auto& spec : ex.tasks) {
    head_types.push_back(spec.head_type);
    labels.push_back(spec.label);
  }
  DatasetSchema schema = ex.schema;
  auto build_model = [bb, make_backbone, tasks, names_in_order, head_types, labels, schema]() {
    Backbone backbone = make_backbone(bb, schema);
    std::vector<Head> heads;
    for (size_t t = 0; t < names_in_order.size(); ++t) {
      ConfigNode h = tasks.child(names_in_order[t]).child("head");
      HeadContext ctx{backbone->output_dim(), labels[t]};
      heads.push_back(head_registry().get(head_types[t]).make(h, ctx));
    }
    return MultiTaskModel(backbone, names_in_order, heads);
  };
  ex.model = build_model();
  for (size_t t = 0; t < ex.tasks.size(); ++t) {
    if (!ex.model->head(t)->token_level()) continue;
    if (!ex.model->backbone()->has_token_features())
      tasks.child(ex.tasks[t].name).fail("type", "head '" + ex.tasks[t].head_type + "' tags tokens and needs per-token "
                                                 "features, which backbone '" + bb.type() + "' does not give (use "
                                                 "a text encoder: transformer or rnn)");
    if (ex.weighting->needs() == GradientKind::kRepresentationGrads)
      w.fail("method", "'" + method + "' takes gradients w.r.t. the pooled representation; task '" + ex.tasks[t].name +
                           "' reads per-token features (use mgda, which works on the shared parameters)");
  }
  // Freezing and parameter groups are checked against the model now, so a pattern that selects nothing
  // fails before anything is written.
  validate_freeze_options(ex.freeze, *ex.model, freeze);
  if (ex.weighting->needs() != GradientKind::kWeightedLoss)
    freeze.check(!freezes_whole_trunk(ex.freeze, *ex.model), "",
                 "weighting method '" + method + "' works on gradients of the shared trunk, which this freeze "
                 "setting leaves without a trainable parameter (use a loss-based method such as ew or uw)");
  apply_freezing(*ex.model, frozen_parameters(*ex.model, ex.freeze.initial));
  make_param_groups(ex);
  ex.make_model = [build_model]() {
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    at::Tensor state;
    {
      std::lock_guard<std::mutex> lock(gen.mutex());
      state = gen.get_state();
    }
    MultiTaskModel m = build_model();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(state);
    return m;
  };

  config.check_unused();
  // Imported last, after every config check. Replicas from make_model need no import: the engines alias
  // their parameters to the model's and copy its buffers.
  if (init && options.artifacts_dir.empty()) ex.init_report = apply_model_init(*init, *ex.model);
  return ex;
}

}  // namespace mtl
