// The `mtl` command line: train, eval, predict and inspect multi-task models defined in YAML, and train
// the single-task baselines that evaluations compare against (delta-m).
//   mtl train configs/multi_fashion.yaml --set trainer.epochs=3
//   mtl baselines configs/multi_fashion.yaml --set trainer.epochs=3
//   mtl eval configs/multi_fashion.yaml --checkpoint runs/multi_fashion
//   mtl export runs/multi_fashion multi_fashion.safetensors   # or model.pt: a state dict for torch.load
//   mtl report runs/a runs/b --output report.html              # curves, final table, config differences
//   mtl sweep configs/multi_fashion.yaml --grid weighting.method=ew,pcgrad --seeds 3   # mean and std per method
//   mtl adapt configs/fashion_maml.yaml --checkpoint runs/fashion_maml --shots 5   # few-shot accuracy, held-out classes
// User errors print one line "mtl: error: <where>: <what>" and exit with code 2.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "mtl/config/config_node.h"
#include "mtl/core/error.h"
#include "mtl/core/stop_signal.h"
#include "mtl/core/text.h"
#include "mtl/dist/local_launcher.h"
#include "mtl/dist/process_group.h"
#include "mtl/run/baselines.h"
#include "mtl/run/evaluate.h"
#include "mtl/run/meta_trainer.h"
#include "mtl/run/assembler.h"
#include "mtl/run/predict.h"
#include "mtl/run/setup_report.h"
#include "mtl/run/trainer.h"
#include "mtl/io/atomic_file.h"
#include "mtl/io/checkpoint.h"
#include "mtl/io/safetensors.h"
#include "mtl/io/torch_state_dict.h"
#include "mtl/optim/param_groups.h"
#include "mtl/report/html.h"
#include "mtl/report/run_log.h"
#include "mtl/sweep/sweep.h"

namespace fs = std::filesystem;
using namespace mtl;

namespace {

struct CommonArgs {
  std::string config;
  std::vector<std::string> sets;
  std::string threads;
  int nproc = 1;                       // mtl train --nproc: local ranks to start
  std::vector<std::string> rank_argv;  // the command line each rank runs (this one without --nproc)
};

void add_common(CLI::App* cmd, CommonArgs& a, bool config_required = true) {
  auto* opt = cmd->add_option("config", a.config, "YAML config file");
  if (config_required) opt->required();
  cmd->add_option("--set", a.sets, "override a config value: --set trainer.epochs=3 (repeatable)")
      ->type_name("KEY=VALUE");
  cmd->add_option("--threads", a.threads, "same as --set trainer.threads=N")->envname("MTL_THREADS");
}

// `args` without `option VALUE` and `option=VALUE`.
std::vector<std::string> without_option(const std::vector<std::string>& args, const std::string& option) {
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == option) {
      ++i;
      continue;
    }
    if (args[i].rfind(option + "=", 0) != 0) out.push_back(args[i]);
  }
  return out;
}

// `run_dir`: a run whose tokenizer and class vocabularies to use (eval, predict, resume).
Run load_run(const CommonArgs& a, const std::string& run_dir = "") {
  std::vector<std::string> sets = a.sets;
  if (!a.threads.empty()) sets.push_back("trainer.threads=" + a.threads);
  return assemble(Config::load(a.config, sets), AssembleOptions{run_dir});
}

// The run directory holding a checkpoint given as a file or a directory.
std::string run_dir_of(const std::string& checkpoint) {
  return fs::path(resolve_checkpoint_path(checkpoint)).parent_path().string();
}

void load_weights(Run& run, const std::string& checkpoint) {
  std::string path = resolve_checkpoint_path(checkpoint);
  load_checkpoint(path, CheckpointRefs{run.model.get(), nullptr, nullptr}, /*restore_rng=*/false);
}

Split parse_split(const std::string& s) { return s == "train" ? Split::kTrain : Split::kTest; }

void print_baselines(const BaselinesRun& run) {
  std::cout << "single-task baselines of " << run.baselines.config << " written to " << run.path << ":\n"
            << format_eval_table(run.baselines.results);
  for (const auto& [task, dir] : run.baselines.run_dirs)
    std::cout << "  " << task << ": " << run.baselines.steps.at(task) << " steps, run directory " << dir << "\n";
}

// Trains the baselines of `ex` unless a file that fits is already there; false when interrupted.
bool ensure_baselines(const Run& run, bool quiet) {
  BaselinesLookup found = find_baselines(run.config);
  if (found.baselines) {
    std::cerr << "mtl: using the single-task baselines in " << found.path << "\n";
    return true;
  }
  if (!found.note.empty()) std::cerr << "mtl: note: " << found.note << "; training new baselines\n";
  BaselinesRun b = run_baselines(run.config, BaselinesRunOptions{!quiet});
  if (b.interrupted) return false;
  print_baselines(b);
  return true;
}

int cmd_baselines(const CommonArgs& a, bool quiet) {
  Run run = load_run(a);
  BaselinesRun b = run_baselines(run.config, BaselinesRunOptions{!quiet});
  if (b.interrupted) return stopped_exit_code();
  print_baselines(b);
  return 0;
}

// `meta:` configs: the meta-trainer instead of multi-task training (mtl/run/meta_trainer.h).
int meta_train_and_report(Run& run, const std::string& resume, bool quiet) {
  const MetaConfig& m = run.config.meta;
  MetaTrainSummary s = meta_train(run, TrainRunOptions{resume, !quiet});
  if (s.interrupted) return stopped_exit_code();
  std::cout << "run directory: " << s.run_dir << "\nmeta steps: " << s.steps << " (" << s.seconds << " s)\n";
  if (s.test_accuracy)
    std::cout << "held-out episodes (" << m.episodes.ways << "-way " << m.episodes.support << "-shot, "
              << m.test_inner_steps << " adaptation steps): accuracy " << s.test_accuracy->mean << " +- "
              << s.test_accuracy->half_width << " (95%, " << s.test_accuracy->n << " episodes)\n";
  return 0;
}

int cmd_train(const CommonArgs& a, std::string resume, bool quiet, bool with_baselines) {
  CommonArgs args = a;
  if (args.config.empty()) {
    if (resume.empty()) throw Error("mtl train", "expected a config file (or --resume RUN_DIR)");
    args.config = (fs::path(resume) / "config.yaml").string();
  }
  // trainer.resume: auto continues the run in trainer.run_dir when it has a checkpoint (a restarted job).
  const RunConfig checked = parse_run_config(Config::load(args.config, args.sets));
  if (a.nproc > 1) {  // the config is valid (one error line, not one per rank): start the ranks
    if (with_baselines)
      throw Error("--baselines", "train the baselines in one process first (mtl baselines CONFIG), then use --nproc");
    return run_local_ranks(a.rank_argv, a.nproc);
  }
  if (resume.empty()) resume = auto_resume_dir(checked.trainer);
  Run run = load_run(args, resume);
  // torchrun (or another launcher) sets WORLD_SIZE, RANK, MASTER_ADDR, ...: one rank of a distributed run.
  const LaunchEnv env = read_launch_env();
  if (env.distributed() && with_baselines)
    throw Error("--baselines", "train the baselines in one process first (mtl baselines CONFIG), then launch the "
                               "distributed run");
  if (run.config.meta.enabled) {
    if (env.distributed() || with_baselines)
      throw Error(args.config, "meta-learning runs in one process, without --baselines");
    return meta_train_and_report(run, resume, quiet);
  }
  if (with_baselines && !ensure_baselines(run, quiet)) return stopped_exit_code();
  TrainRunOptions options{resume, !quiet};
  options.group = ProcessGroup::connect(env, run.config.distributed);
  if (env.rank == 0)
    std::cerr << "mtl: training '" << run.config.name << "' with " << run.tasks.size() << " task(s), "
              << (run.config.model.architecture.type() == "hps" ? std::string()
                                                                 : run.config.model.architecture.type() + " over ")
              << "backbone " << run.config.model.backbone.type() << ", "
              << (run.config.engine.probe_plan && !run.config.engine.async
                      ? std::string("threads auto")
                      : std::to_string(run.config.engine.threads) + " thread(s)")
              << (env.distributed() ? " per process, " + std::to_string(env.world_size) + " processes" : "") << "\n";
  TrainSummary s = train(run, options);
  if (s.interrupted) return stopped_exit_code();
  if (env.rank != 0) return 0;  // rank 0 reports
  double total = 0;
  for (double e : s.epoch_seconds) total += e;
  std::cout << "run directory: " << s.run_dir << "\n";
  std::cout << "steps: " << s.steps;
  if (!s.epoch_seconds.empty())
    std::cout << ", mean epoch time: " << (total / s.epoch_seconds.size()) << " s";
  if (s.skipped_steps > 0) std::cout << ", skipped (non-finite): " << s.skipped_steps;
  std::cout << "\n";
  // What the architecture learned where its structure is learned (ltb's tree), else its shape.
  if (run.model->architecture().name() != "hps") std::cout << "architecture: " << run.model->architecture().describe() << "\n";
  std::cout << "test metrics:\n" << format_eval_table(s.final_eval);
  return 0;
}

struct AdaptArgs {
  std::string checkpoint, task, json;
  bool scratch = false, trunk_only = false;
  int64_t shots = 0, episodes = 0, steps = -1;
  double lr = 0.0;
  std::vector<std::string> adapt;
};

int cmd_adapt(const CommonArgs& a, const AdaptArgs& x) {
  Run run = load_run(a, x.checkpoint.empty() ? "" : run_dir_of(x.checkpoint));
  if (!run.config.meta.enabled) throw Error(a.config, "mtl adapt needs a config with a meta: section (ways, query, test_classes)");
  if (x.scratch == !x.checkpoint.empty()) throw Error("mtl adapt", "give --checkpoint RUN or --scratch");
  load_adaptation_start(run, x.scratch ? AdaptStart::kScratch : x.trunk_only ? AdaptStart::kTrunk : AdaptStart::kCheckpoint,
                        x.checkpoint);
  AdaptRequest r = default_adapt_request(run.config);
  if (x.shots > 0) r.episodes.support = x.shots;
  if (x.episodes > 0) r.count = x.episodes;
  if (x.steps >= 0) r.inner.steps = x.steps;
  if (x.lr > 0) r.inner.lr = x.lr;
  if (!x.adapt.empty()) r.adapt = x.adapt;
  if (!x.task.empty()) {
    const auto names = run.task_names();
    auto it = std::find(names.begin(), names.end(), x.task);
    if (it == names.end()) throw Error("--task", "no task '" + x.task + "'; tasks: " + join(names));
    r.tasks = {static_cast<size_t>(it - names.begin())};
  }
  AdaptResult res = evaluate_adaptation(run, run.model, r);
  std::cout << r.count << " episodes, " << r.episodes.ways << "-way " << r.episodes.support << "-shot, "
            << r.inner.steps << " adaptation steps of lr " << r.inner.lr << ": accuracy " << res.accuracy.mean
            << " +- " << res.accuracy.half_width << " (95%), query loss " << res.query_loss.mean << ", "
            << res.seconds << " s\n";
  if (!x.json.empty())
    write_file_atomic(x.json, nlohmann::json{{"episodes", r.count}, {"ways", r.episodes.ways}, {"shots", r.episodes.support},
                                             {"steps", r.inner.steps}, {"lr", r.inner.lr}, {"accuracy", res.accuracy.mean},
                                             {"accuracy_ci95", res.accuracy.half_width}, {"query_loss", res.query_loss.mean},
                                             {"seconds", res.seconds}}.dump(2) + "\n");
  return 0;
}

int cmd_eval(const CommonArgs& a, const std::string& checkpoint, const std::string& split,
             const std::string& output) {
  Run run = load_run(a, run_dir_of(checkpoint));
  configure_torch_threads(run.config.engine, run.config.trainer.deterministic);
  load_weights(run, checkpoint);
  auto data = run.data->open(parse_split(split));
  EvalResult r = evaluate(run.model, run.tasks, *data, run.config.trainer.eval_batch_size);
  const std::string note = attach_baselines(r, run.config);
  if (!note.empty()) std::cerr << "mtl: note: " << note << "; delta-m not reported\n";
  std::cout << format_eval_table(r);
  if (!output.empty()) {
    nlohmann::ordered_json j;
    for (const auto& [k, v] : r.flat()) j[k] = v;
    write_file_atomic(output, j.dump(2) + "\n");
  }
  return 0;
}

int cmd_predict(const CommonArgs& a, const std::string& checkpoint, const std::string& split,
                const std::string& output) {
  Run run = load_run(a, run_dir_of(checkpoint));
  configure_torch_threads(run.config.engine, run.config.trainer.deterministic);
  load_weights(run, checkpoint);
  const bool jsonl = fs::path(output).extension() == ".jsonl" || fs::path(output).extension() == ".json";
  auto data = run.data->open(parse_split(split));
  write_file_atomic(output, format_predictions(run.model, run.tasks, *data, run.config.trainer.eval_batch_size, jsonl));
  std::cerr << "mtl: wrote " << data->size() << " predictions to " << output << "\n";
  return 0;
}

int64_t count(const std::vector<at::Tensor>& ps) {
  int64_t n = 0;
  for (const auto& p : ps) n += p.numel();
  return n;
}

int64_t frozen_count(const Run& run) {
  int64_t n = 0;
  for (const auto& p : run.model->parameters())
    if (!p.requires_grad()) n += p.numel();
  return n;
}

int cmd_inspect(const CommonArgs& a) {
  Run run = load_run(a);
  Run& ex = run;
  auto bb = run.config.model.backbone;
  const Architecture& arch = ex.model->architecture();
  int64_t trunk = 0;
  for (const auto& m : arch.modules()) trunk += count(m.second->parameters());
  std::cout << "architecture: " << arch.describe() << "\n";
  for (const auto& in : run.schema.inputs)  // as the data's preprocessing delivers them
    std::cout << "input " << in.name << ": " << shape_text(in.shape) << " per example\n";
  std::cout << "backbone: " << bb.type() << " -> " << arch.output_dim() << " features per task, " << trunk
            << " parameters below the heads (" << count(ex.model->shared_parameters()) << " shared and trainable)\n";
  if (!ex.init_report.empty()) std::cout << "model.init: " << ex.init_report << "\n";
  for (const auto& m : arch.modules()) std::cout << *m.second << "\n";
  for (size_t t = 0; t < ex.tasks.size(); ++t) {
    const auto& spec = ex.tasks[t];
    std::cout << "task " << spec.name << ": head " << spec.head_type << " (label '" << spec.label.name << "', "
              << to_string(spec.label.kind) << ", size " << spec.label.size << "), loss " << spec.loss_type
              << ", weight " << spec.weight << ", " << count(ex.model->head_parameters(t)) << " parameters\n";
    std::cout << "  " << *ex.model->head(t) << "\n";
  }
  int64_t shared = count(ex.model->shared_parameters()), total = count(ex.model->parameters());
  const int64_t frozen = frozen_count(run);
  std::cout << "parameters: " << total << " total, " << shared << " shared (trunk), " << (total - frozen - shared)
            << " task-specific, " << frozen << " frozen\n";
  std::cout << training_setup_report(*run.model, run.config, *run.weighting);
  return 0;
}

// Writes every model tensor of a checkpoint (parameters and buffers, under the model's own names) to a
// safetensors file, or to a state dict that Python's torch.load reads when the output ends in .pt or .pth. The model is built from the run's config and artifacts, as eval does, so that the
// checkpoint is checked against the architecture it claims to be.
int cmd_export(const std::string& checkpoint, const std::string& output, const std::string& config) {
  if (!fs::exists(checkpoint)) throw Error(checkpoint, "no such checkpoint file or run directory");
  const std::string ckpt = resolve_checkpoint_path(checkpoint);
  if (!fs::exists(ckpt)) throw Error(ckpt, "checkpoint file does not exist");
  const std::string run_dir = run_dir_of(checkpoint);
  CommonArgs args;
  args.config = config.empty() ? (fs::path(run_dir) / "config.yaml").string() : config;
  if (!fs::exists(args.config))
    throw Error(args.config, "the run's config file does not exist (give the config with --config FILE)");
  Run ex = load_run(args, run_dir);
  load_weights(ex, checkpoint);
  NamedTensors tensors;
  for (const auto& kv : ex.model->named_parameters()) tensors.emplace_back(kv.key(), kv.value().detach());
  for (const auto& kv : ex.model->named_buffers()) tensors.emplace_back(kv.key(), kv.value().detach());
  const std::string ext = fs::path(output).extension().string();
  if (ext == ".pt" || ext == ".pth")
    write_torch_state_dict(output, tensors);  // an OrderedDict state dict: torch.load(output)
  else
    write_safetensors(output, tensors,
                      {{"format", "mtl"}, {"config", args.config}, {"tasks", join(ex.task_names(), ",")}});
  std::cout << "exported " << tensors.size() << " tensors (" << fs::file_size(output) << " bytes) from " << ckpt
            << " to " << output << "\n";
  return 0;
}

// One self-contained HTML file with the runs' curves, final evaluations and configs (mtl/report/html.h).
int cmd_report(const std::vector<std::string>& run_dirs, const std::string& output, const std::string& title) {
  std::vector<RunLog> runs;
  for (const auto& d : run_dirs) runs.push_back(read_run_log(d));
  const std::string html = report_html(runs, {title});
  const fs::path parent = fs::path(output).parent_path();
  if (!parent.empty() && !fs::is_directory(parent)) throw Error(output, "the output's directory does not exist");
  write_file_atomic(output, html);
  std::cout << "wrote " << output << " (" << runs.size() << (runs.size() == 1 ? " run, " : " runs, ") << html.size() / 1024
            << " KiB; opens offline)\n";
  return 0;
}

// Every combination of the grid for every seed, one run directory each (resumable), then the aggregate table.
int cmd_sweep(const CommonArgs& a, SweepOptions options, bool quiet) {
  options.config = a.config;
  options.sets = a.sets;
  if (!a.threads.empty()) options.sets.push_back("trainer.threads=" + a.threads);
  options.progress = !quiet;
  SweepSummary s = run_sweep(options);
  if (s.interrupted) {
    std::cerr << "mtl sweep: stopped; run the same command again to continue (finished runs are kept)\n";
    return stopped_exit_code();
  }
  std::cout << s.markdown << "summary: " << (fs::path(s.dir) / "summary.md").string() << " and summary.json; report: "
            << (fs::path(s.dir) / "report.html").string() << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // A file size limit (ulimit -f) makes writes fail with EFBIG, reported as a one-line error naming the file,
  // instead of killing the process with SIGXFSZ halfway through a write.
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{"mtl: multi-task learning on LibTorch. Define tasks in YAML, train one shared trunk with a head per task."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "mtl 0.1.0");

  CommonArgs train_args, eval_args, predict_args, inspect_args, baselines_args;
  std::string resume, eval_ckpt, eval_split = "test", eval_out, pred_ckpt, pred_split = "test", pred_out;
  bool quiet = false, with_baselines = false;

  auto* train_cmd = app.add_subcommand("train", "train a multi-task model from a YAML config");
  add_common(train_cmd, train_args, /*config_required=*/false);
  train_cmd->add_option("--resume", resume, "continue the run saved in RUN_DIR (config defaults to RUN_DIR/config.yaml)")
      ->type_name("RUN_DIR");
  train_cmd->add_flag("--quiet,-q", quiet, "no progress display");
  train_cmd->add_option("--nproc", train_args.nproc,
                        "start N processes on this machine as the ranks of one distributed run (torchrun's "
                        "variables, c10d Gloo over 127.0.0.1); --threads is per process")
      ->check(CLI::Range(1, 1024));
  train_cmd->add_flag("--baselines", with_baselines,
                      "first train the single-task baselines (unless a matching baselines file exists), so that "
                      "evaluations report delta-m");

  auto* baselines_cmd = app.add_subcommand(
      "baselines", "train one single-task model per task (same backbone, data and budget) and write their metrics "
                   "for delta-m (default file: <trainer.run_dir>.baselines/baselines.json)");
  add_common(baselines_cmd, baselines_args);
  baselines_cmd->add_flag("--quiet,-q", quiet, "no progress display");

  auto* eval_cmd = app.add_subcommand("eval", "evaluate a checkpoint on the test split");
  add_common(eval_cmd, eval_args);
  eval_cmd->add_option("--checkpoint", eval_ckpt, "checkpoint file or run directory")->required();
  eval_cmd->add_option("--split", eval_split, "train or test")->check(CLI::IsMember({"train", "test"}));
  eval_cmd->add_option("--output", eval_out, "also write the metrics as JSON to this file");

  auto* pred_cmd = app.add_subcommand("predict", "write per-task predictions (CSV, or JSONL for .jsonl)");
  add_common(pred_cmd, predict_args);
  pred_cmd->add_option("--checkpoint", pred_ckpt, "checkpoint file or run directory")->required();
  pred_cmd->add_option("--output", pred_out, "output file (.csv or .jsonl)")->required();
  pred_cmd->add_option("--split", pred_split, "train or test")->check(CLI::IsMember({"train", "test"}));

  auto* inspect_cmd = app.add_subcommand("inspect", "show the backbone, heads and parameter counts");
  add_common(inspect_cmd, inspect_args);

  std::string export_ckpt, export_out, export_config;
  auto* export_cmd = app.add_subcommand(
      "export", "write a checkpoint's model tensors (parameters and buffers) to a safetensors file, or to a "
      "PyTorch state dict (torch.load) when OUTPUT ends in .pt or .pth");
  export_cmd->add_option("checkpoint", export_ckpt, "checkpoint file or run directory")->required();
  export_cmd->add_option("output", export_out, "file to write: .safetensors, or .pt/.pth for torch.load")->required();
  export_cmd->add_option("--config", export_config, "the run's config (default: config.yaml beside the checkpoint)");

  std::vector<std::string> report_dirs;
  std::string report_out = "report.html", report_title;
  auto* report_cmd = app.add_subcommand(
      "report", "write one self-contained HTML file (opens offline) with the runs' loss, metric, weight and "
                "gradient-diagnostics curves, final evaluations and configs; several runs are overlaid and compared");
  report_cmd->add_option("run_dirs", report_dirs, "run directories (trainer.run_dir of `mtl train`)")->required();
  report_cmd->add_option("--output,-o", report_out, "HTML file to write (default report.html)");
  report_cmd->add_option("--title", report_title, "the page's title (default: the run names)");

  CommonArgs sweep_args;
  SweepOptions sweep_options;
  bool sweep_no_baselines = false;
  auto* sweep_cmd = app.add_subcommand(
      "sweep", "train a config for every combination of a grid of settings and several seeds, each run in its own "
               "directory (resumable: finished runs are skipped), then write the mean and standard deviation of "
               "every test metric and delta-m per combination (summary.md, summary.json) and the HTML report");
  add_common(sweep_cmd, sweep_args);
  sweep_cmd->add_option("--grid", sweep_options.grid, "one axis: KEY=V1,V2,... (repeatable; replaces sweep.grid)")
      ->type_name("KEY=V1,V2");
  sweep_cmd->add_option("--seeds", sweep_options.seeds, "runs per combination: trainer.seed, trainer.seed + 1, ...")
      ->check(CLI::Range(1, 1000));
  sweep_cmd->add_option("--dir", sweep_options.dir, "the sweep's directory (default sweep.dir, else <trainer.run_dir>.sweep)");
  sweep_cmd->add_flag("--no-baselines", sweep_no_baselines, "no single-task baselines (no delta-m)");
  sweep_cmd->add_flag("--quiet,-q", quiet, "no progress display of each run");

  CommonArgs adapt_args;
  AdaptArgs adapt_x;
  auto* adapt_cmd = app.add_subcommand(
      "adapt", "few-shot evaluation: adapt a (meta-)trained model to episodes of held-out classes (the config's meta: "
               "section: ways, query, test_classes, test_episodes) and report the query accuracy's mean and 95% interval");
  add_common(adapt_cmd, adapt_args);
  adapt_cmd->add_option("--checkpoint", adapt_x.checkpoint, "checkpoint file or run directory to start from");
  adapt_cmd->add_flag("--scratch", adapt_x.scratch, "start from the config's initial weights instead (a baseline)");
  adapt_cmd->add_flag("--trunk-only", adapt_x.trunk_only,
                      "load only the trunk from --checkpoint; the heads start fresh (e.g. from a multi-task run)");
  adapt_cmd->add_option("--task", adapt_x.task, "episodes of this task only (default: every task in turn)");
  adapt_cmd->add_option("--shots", adapt_x.shots, "K: support examples per class (default meta.support)")
      ->check(CLI::PositiveNumber);
  adapt_cmd->add_option("--episodes", adapt_x.episodes, "episodes (default meta.test_episodes)")->check(CLI::PositiveNumber);
  adapt_cmd->add_option("--steps", adapt_x.steps, "adaptation steps (default meta.test_inner_steps)")
      ->check(CLI::NonNegativeNumber);
  adapt_cmd->add_option("--lr", adapt_x.lr, "adaptation learning rate (default meta.inner_lr)")->check(CLI::PositiveNumber);
  adapt_cmd->add_option("--adapt", adapt_x.adapt, "what adapts: heads, all, or parameter-name patterns (default meta.adapt)");
  adapt_cmd->add_option("--json", adapt_x.json, "also write the result as JSON to this file");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  train_args.rank_argv = without_option(std::vector<std::string>(argv, argv + argc), "--nproc");
  try {
    if (*train_cmd) return cmd_train(train_args, resume, quiet, with_baselines);
    if (*baselines_cmd) return cmd_baselines(baselines_args, quiet);
    if (*eval_cmd) return cmd_eval(eval_args, eval_ckpt, eval_split, eval_out);
    if (*pred_cmd) return cmd_predict(predict_args, pred_ckpt, pred_split, pred_out);
    if (*inspect_cmd) return cmd_inspect(inspect_args);
    if (*export_cmd) return cmd_export(export_ckpt, export_out, export_config);
    if (*report_cmd) return cmd_report(report_dirs, report_out, report_title);
    if (*adapt_cmd) return cmd_adapt(adapt_args, adapt_x);
    if (*sweep_cmd) {
      sweep_options.baselines = !sweep_no_baselines;
      return cmd_sweep(sweep_args, sweep_options, quiet);
    }
  } catch (const mtl::Error& e) {
    std::cerr << "mtl: error: " << e.what() << "\n";
    return 2;
  } catch (const c10::Error& e) {
    std::string msg = e.what_without_backtrace();
    std::cerr << "mtl: internal error: " << msg.substr(0, msg.find('\n')) << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "mtl: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
