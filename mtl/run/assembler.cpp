#include "mtl/run/assembler.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "backbones/backbone.h"
#include "heads/head.h"
#include "mtl/core/random.h"
#include "mtl/data/mixture.h"
#include "mtl/engine/pipeline_engine.h"
#include "mtl/metrics/metric.h"
#include "mtl/model/freezing.h"
#include "mtl/run/model_init.h"

namespace fs = std::filesystem;

namespace mtl {

namespace {

bool kind_in(LabelKind k, const std::vector<LabelKind>& kinds) {
  return std::find(kinds.begin(), kinds.end(), k) != kinds.end();
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
    case LabelKind::kPixelClass: return "segmentation";
    case LabelKind::kPixelReal: return "dense_regression";
  }
  return "classification";
}

// The task's label among the data's (a mixture's labels are "<dataset>.<label>").
const LabelInfo& find_label(const TaskConfig& tc, const DataConfig& data_config, const DatasetSource& data,
                            const DatasetSchema& schema) {
  const LabelInfo* label = nullptr;
  if (data_config.mixture()) {
    const auto& names = data_config.names;
    const size_t d = static_cast<size_t>(std::find(names.begin(), names.end(), tc.dataset) - names.begin());
    const DatasetSchema& own = static_cast<const MixtureSource&>(data).part_schema(d);
    if (!own.label(tc.label)) {
      auto labels = own.label_names();
      tc.node.fail("label", "dataset '" + tc.dataset + "' has no label field '" + tc.label + "'" +
                                did_you_mean(tc.label, labels) + "; it has: " + join(labels));
    }
    label = schema.label(mixture_label(tc.dataset, tc.label));
  } else {
    label = schema.label(tc.label);
  }
  if (!label) {
    auto names = schema.label_names();
    tc.node.fail("label", "the dataset has no label field '" + tc.label + "'" + did_you_mean(tc.label, names) +
                              "; it has: " + join(names));
  }
  return *label;
}

// Metrics are validated now (one probe each) and made fresh for every evaluation pass.
std::function<std::vector<std::unique_ptr<Metric>>()> metrics_of(const ConfigNode& t, const std::string& label_name,
                                                                   const HeadEntry& head, const LabelInfo& label) {
  std::vector<ConfigNode> nodes = t.components("metrics", head.default_metrics);
  std::set<std::string> seen;
  for (const auto& m : nodes) {
    const MetricEntry& me = metric_registry().get(m.type(), m.where("type"));
    if (!kind_in(label.kind, me.label_kinds))
      m.fail("type", "metric '" + m.type() + "' needs " + kinds_text(me.label_kinds) + " labels; label '" +
                         label_name + "' holds " + to_string(label.kind) + " values");
    auto probe = me.make(m, label);
    if (!seen.insert(probe->name()).second) m.fail("", "metric '" + probe->name() + "' is listed twice");
  }
  return [nodes, label]() {
    std::vector<std::unique_ptr<Metric>> out;
    for (const auto& m : nodes) out.push_back(metric_registry().get(m.type()).make(m, label));
    return out;
  };
}

TaskSpec build_task(const TaskConfig& tc, const DataConfig& data_config, const DatasetSource& data,
                    const DatasetSchema& schema) {
  const ConfigNode& t = tc.node;
  const LabelInfo& label = find_label(tc, data_config, data, schema);
  TaskSpec spec;
  spec.name = tc.name;
  spec.dataset = tc.dataset;
  spec.label = label;
  spec.head_type = t.get<std::string>("type", default_head_for(label.kind));
  const HeadEntry& head = head_registry().get(spec.head_type, t.where("type"));
  if (head.label_kind != label.kind)
    t.fail("type", "head '" + spec.head_type + "' needs " + to_string(head.label_kind) + " labels, but label '" +
                       tc.label + "' holds " + to_string(label.kind) + " values");
  spec.weight = non_negative<double>(t, "weight", 1.0);
  ConfigNode loss = t.component("loss", head.default_loss);
  spec.loss_type = loss.type();
  const LossEntry& le = loss_registry().get(spec.loss_type, loss.where("type"));
  if (!kind_in(label.kind, le.label_kinds))
    loss.fail("type", "loss '" + spec.loss_type + "' needs " + kinds_text(le.label_kinds) + " labels; label '" +
                          tc.label + "' holds " + to_string(label.kind) + " values");
  spec.loss = le.make(loss, label);
  spec.make_metrics = metrics_of(t, tc.label, head, label);
  return spec;
}

// Token-level and dense heads need per-token features or feature maps, which representation-space weighting
// cannot use; representation space needs an architecture with a shared representation.
void check_token_heads(const RunConfig& rc, Run& run) {
  const std::string no_rep = run.model->architecture().no_representation_reason();
  if (run.weighting->needs() == GradientKind::kRepresentationGrads && !no_rep.empty())
    rc.weighting.node.fail("space", "space: representation differentiates the shared representation, but " + no_rep +
                                        " (use space: parameters)");
  for (size_t t = 0; t < run.tasks.size(); ++t) {
    if (run.model->head(t)->dense() && run.weighting->needs() == GradientKind::kRepresentationGrads)
      rc.weighting.node.fail("space", "space: representation takes gradients w.r.t. the pooled representation; "
                                       "task '" + run.tasks[t].name + "' reads feature maps (use space: parameters)");
    if (!run.model->head(t)->token_level()) continue;
    if (!run.model->architecture().has_token_features())
      rc.tasks[t].node.fail("type", "head '" + run.tasks[t].head_type + "' tags tokens and needs per-token features, "
                                    "which " + (run.model->backbone() ? "backbone '" + rc.model.backbone.type() + "'"
                                    : "model.architecture '" + rc.model.architecture.type() + "'") +
                                    " does not give (use a text encoder, transformer or rnn, with architecture hps)");
    if (run.weighting->needs() == GradientKind::kRepresentationGrads)
      rc.weighting.node.fail("space", "space: representation takes gradients w.r.t. the pooled representation; "
                                       "task '" + run.tasks[t].name + "' reads per-token features (use space: "
                                       "parameters)");
  }
}

// Freezing is checked against the model now, so a pattern that selects nothing fails before anything is written.
void apply_initial_freezing(const RunConfig& rc, Run& run) {
  validate_freeze_options(rc.freeze, *run.model, rc.freeze_node);
  if (run.weighting->needs() != GradientKind::kWeightedLoss)
    rc.freeze_node.check(!freezes_whole_trunk(rc.freeze, *run.model), "",
                         "weighting method '" + rc.weighting.method + "' works on gradients of the shared trunk, "
                         "which this freeze setting leaves without a trainable parameter (use a loss-based method "
                         "such as ew or uw)");
  apply_freezing(*run.model, frozen_parameters(*run.model, rc.freeze.initial));
}

}  // namespace

std::shared_ptr<DatasetSource> build_data(const DataConfig& data, const std::string& artifacts_dir) {
  std::vector<std::shared_ptr<DatasetSource>> parts;
  for (const auto& d : data.nodes) parts.push_back(dataset_registry().get(d.type(), d.where("type"))(d));
  std::shared_ptr<DatasetSource> out =
      data.mixture() ? std::make_shared<MixtureSource>(data.names, parts) : parts.front();
  if (!artifacts_dir.empty()) out->load_artifacts((fs::path(artifacts_dir) / "data").string());
  return out;
}

std::shared_ptr<Tokenizer> build_tokenizer(const ConfigNode& tokenizer, DatasetSource& data,
                                           const std::string& artifacts_dir) {
  if (!data.needs_tokenizer()) return nullptr;
  TokenizerOptions options = parse_tokenizer_options(tokenizer);
  std::shared_ptr<Tokenizer> tok;
  if (!artifacts_dir.empty()) {
    tok = load_tokenizer((fs::path(artifacts_dir) / "tokenizer").string());
  } else {
    tok = make_tokenizer(options, [&data](const std::function<void(const std::string&)>& visit) {
      data.for_each_training_text(visit);
    });
  }
  data.set_tokenizer(tok);
  return tok;
}

std::vector<TaskSpec> build_tasks(const std::vector<TaskConfig>& tasks, const DataConfig& data_config,
                                  const DatasetSource& data) {
  DatasetSchema schema = data.schema();
  std::vector<TaskSpec> out;
  for (const auto& tc : tasks) out.push_back(build_task(tc, data_config, data, schema));
  return out;
}

std::unique_ptr<Weighting> build_weighting(const WeightingConfig& config, const std::vector<TaskSpec>& tasks,
                                           const EngineOptions& engine) {
  const ConfigNode& w = config.node;
  WeightingContext ctx;
  for (const auto& t : tasks) {
    ctx.task_names.push_back(t.name);
    ctx.task_weights.push_back(t.weight);
  }
  std::unique_ptr<Weighting> out = make_weighting(w, ctx);
  if (!engine.async) return out;
  const std::string& m = config.method;
  w.check(out->needs() == GradientKind::kWeightedLoss, "method",
          "engine.mode async works with loss-based weighting methods only; '" + m +
              "' needs per-task gradients (use engine.mode sync)");
  w.check(!out->needs_losses_after_step(), "method",
          "engine.mode async does not re-evaluate batches after each update as '" + m + "' needs (use engine.mode sync)");
  w.check(out->parameters().empty(), "method",
          "engine.mode async does not train a weighting method's own parameters; '" + m +
              "' learns some (use engine.mode sync)");
  return out;
}

std::string rc_model_type(const ConfigNode& backbone, const ConfigNode& architecture) {
  return "model.architecture " + architecture.type() + " over backbone " + backbone.type();
}

// Dense heads read the architecture's feature maps: turns them on and returns their channels (empty when no task
// has a pixel label), or a one-line error at the first dense task when the model gives none.
std::vector<int64_t> dense_maps(Architecture& architecture, const DatasetSchema& schema,
                                const std::vector<LabelInfo>& labels, const std::vector<TaskConfig>& task_configs,
                                const std::string& model) {
  for (size_t t = 0; t < labels.size(); ++t) {
    if (!is_pixel_label(labels[t].kind)) continue;
    std::vector<int64_t> channels = probe_map_channels(architecture, schema);
    if (channels.empty())
      task_configs[t].node.fail("type", "label '" + labels[t].name + "' holds " + to_string(labels[t].kind) +
                                            " values, whose head reads feature maps, which " + model +
                                            " does not give (use hps, cross_stitch, mtan, branch or ltb over a backbone "
                                            "with convolutional stages: lenet, resnet)");
    return channels;
  }
  return {};
}

ModelFactory model_factory(const ModelConfig& model, const std::vector<TaskConfig>& task_configs,
                           const std::vector<TaskSpec>& tasks, const DatasetSchema& schema, uint64_t seed) {
  const ConfigNode bb = model.backbone, arch = model.architecture;
  const BackboneFactory& make_backbone = backbone_registry().get(bb.type(), bb.where("type"));
  const ArchitectureFactory& make_architecture = architecture_registry().get(arch.type(), arch.where("type"));
  std::vector<std::string> names;
  std::vector<std::string> head_types;
  std::vector<LabelInfo> labels;
  std::vector<ConfigNode> head_nodes;
  for (size_t t = 0; t < tasks.size(); ++t) {
    names.push_back(tasks[t].name);
    head_types.push_back(tasks[t].head_type);
    labels.push_back(tasks[t].label);
    head_nodes.push_back(task_configs[t].node.child("head"));
  }
  return [=]() {
    ArchitecturePtr architecture = make_architecture(arch, ArchitectureContext{bb, make_backbone, schema, names});
    const std::vector<int64_t> maps = dense_maps(*architecture, schema, labels, task_configs, rc_model_type(bb, arch));
    std::vector<Head> heads;
    for (size_t t = 0; t < names.size(); ++t)
      heads.push_back(head_registry().get(head_types[t]).make(
          head_nodes[t], HeadContext{architecture->output_dim(), labels[t], maps}));
    // Initial weights from the run's seed: the trunk first, then each head from a stream of its own.
    at::Generator gen = make_generator(seed, /*stream=*/0, 0);
    architecture->reset_parameters(gen);
    for (size_t t = 0; t < heads.size(); ++t) {
      at::Generator head_gen = make_generator(seed, /*stream=*/1, t);
      reset_module_parameters(*heads[t], head_gen);
    }
    return MultiTaskModel(architecture, names, heads);
  };
}

ParamGroups build_param_groups(const OptimizerOptions& optimizer, const SchedulerOptions& scheduler,
                               MultiTaskModelImpl& model, Weighting& weighting) {
  NamedParameters named;
  for (const auto& kv : model.named_parameters()) named.emplace_back(kv.key(), kv.value());
  std::vector<std::string> trunk;
  for (const auto& m : model.architecture().modules()) trunk.push_back(m.first);
  return ParamGroups(optimizer, scheduler, named, backbone_blocks(model), weighting.parameters(), trunk);
}

namespace {

// engine.model_parallel: what the model split needs of the weighting method and the model.
void check_model_parallel(const RunConfig& rc, const Run& run) {
  const ModelParallel mp = rc.engine.model_parallel;
  if (mp == ModelParallel::kNone) return;
  if (run.weighting->needs() != GradientKind::kWeightedLoss)
    rc.engine_node.fail("model_parallel", std::string("model parallelism (") +
                                               (mp == ModelParallel::kTasks ? "tasks" : "pipeline") +
                                               ") supports loss-based weighting methods; '" + rc.weighting.method +
                                               "' combines per-task gradients: use model_parallel: none");
  if (mp == ModelParallel::kPipeline) {
    const std::string why = pipeline_unsupported_reason(*run.model, rc.engine.model_threads);
    if (!why.empty()) rc.engine_node.fail("model_parallel", why);
  }
}

// meta: N-way episodes relabel a task's classes 0..N-1, so its head has N outputs; what else meta-learning needs.
// meta.classes and meta.test_classes as class indices: names looked up in the label of each N-way task (they
// must mean the same classes in all); classes left out with test_classes given: every class but the test ones,
// so that the evaluation's classes are held out of meta-training.
void resolve_meta_classes(MetaConfig& m, const std::vector<TaskSpec>& tasks) {
  int64_t fewest = -1;
  for (size_t t = 0; t < tasks.size(); ++t) {
    const std::vector<int64_t> train = resolve_classes(m.class_keys, tasks[t].label, m.node.where("classes"));
    const std::vector<int64_t> test = resolve_classes(m.test_class_keys, tasks[t].label, m.node.where("test_classes"));
    if (t > 0 && (train != m.episodes.classes || test != m.test_classes))
      m.node.fail("classes", "class names mean different classes in tasks " + tasks[0].name + " and " + tasks[t].name +
                                 "; give class indices");
    m.episodes.classes = train;
    m.test_classes = test;
    fewest = fewest < 0 ? tasks[t].label.size : std::min(fewest, tasks[t].label.size);
  }
  if (!m.class_keys.empty() || m.test_classes.empty()) return;
  for (int64_t c = 0; c < fewest; ++c)
    if (std::find(m.test_classes.begin(), m.test_classes.end(), c) == m.test_classes.end()) m.episodes.classes.push_back(c);
}

void apply_meta(RunConfig& rc, std::vector<TaskSpec>& tasks) {
  MetaConfig& m = rc.meta;
  if (!m.enabled) return;
  if (rc.data.mixture()) m.node.fail("", "meta-learning draws episodes from one dataset (`data:`), not `datasets:`");
  if (rc.engine.model_parallel != ModelParallel::kNone || rc.engine.async)
    m.node.fail("", "meta-learning runs episodes on threads of its own: use engine.mode sync, model_parallel none");
  if (rc.engine.precision != Precision::kFloat32)
    m.node.fail("", "meta-learning trains in float32 (trainer.precision: bf16 applies to multi-task training)");
  if (m.episodes.ways == 0) return;
  for (TaskSpec& t : tasks) {
    if (t.label.kind != LabelKind::kClass)
      m.node.fail("ways", "N-way episodes need class labels; task " + t.name + "'s label '" + t.label.name +
                              "' holds " + to_string(t.label.kind));
    if (t.label.size < m.episodes.ways)
      m.node.fail("ways", "task " + t.name + "'s label '" + t.label.name + "' has " + std::to_string(t.label.size) +
                              " classes, fewer than ways = " + std::to_string(m.episodes.ways));
  }
  resolve_meta_classes(m, tasks);
  for (TaskSpec& t : tasks) {
    t.label.size = m.episodes.ways;
    t.label.classes.clear();
  }
}

}  // namespace

Run assemble(const RunConfig& config, const AssembleOptions& options) {
  Run run;
  run.config = config;
  const RunConfig& rc = run.config;
  run.data = build_data(rc.data, options.artifacts_dir);
  run.tokenizer = build_tokenizer(rc.tokenizer, *run.data, options.artifacts_dir);
  run.schema = run.data->schema();
  run.tasks = build_tasks(rc.tasks, rc.data, *run.data);
  apply_meta(run.config, run.tasks);
  run.weighting = build_weighting(rc.weighting, run.tasks, rc.engine);
  run.make_model = model_factory(rc.model, rc.tasks, run.tasks, run.schema, static_cast<uint64_t>(rc.trainer.seed));
  run.model = run.make_model();
  check_token_heads(rc, run);
  if (rc.meta.enabled && !run.model->buffers().empty())
    rc.meta.node.fail("", "meta-learning needs a model without BatchNorm (its episodes' inner loops would move the "
                          "running statistics): use norm: none");
  if (rc.engine.async && !run.model->buffers().empty())
    throw Error(rc.source.file(), "engine.mode async does not support models with buffers such as BatchNorm running "
                                  "statistics (use norm: none, or engine.mode sync)");
  check_model_parallel(rc, run);
  apply_initial_freezing(rc, run);
  build_param_groups(rc.optimizer, rc.scheduler, *run.model, *run.weighting);  // checks optimizer.groups now
  rc.source.check_unused();
  // Imported last, after every config check. Replicas from make_model need no import: the engines alias
  // their parameters to the model's and copy its buffers.
  if (rc.model.init && options.artifacts_dir.empty()) run.init_report = apply_model_init(*rc.model.init, *run.model);
  return run;
}

Run assemble(const Config& config, const AssembleOptions& options) {
  return assemble(parse_run_config(config, ParseOptions{options.artifacts_dir.empty()}), options);
}

void save_data_artifacts(const DatasetSource& data, const Tokenizer* tokenizer, const std::string& run_dir) {
  if (tokenizer) tokenizer->save((fs::path(run_dir) / "tokenizer").string());
  data.save_artifacts((fs::path(run_dir) / "data").string());
}

}  // namespace mtl
