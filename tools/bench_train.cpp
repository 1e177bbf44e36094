// mtl_bench: training throughput of `mtl train` itself, against a plain PyTorch loop on the same model and data.
//
// Every row is a config from configs/ assembled by mtl::assemble and trained by mtl::train, the code path of
// `mtl train`; a StepTimer observer times the steps after the warm-up (trainer.max_steps = warmup + steps; the
// epoch, evaluation, checkpoint and metrics-log intervals are set outside the timed window, and a window that
// crosses an epoch boundary is an error). Rows: MultiLeNet (configs/multi_fashion.yaml), a wide MLP (the same
// config with model.backbone={type: mlp, hidden: [2048, 2048]}) and a Transformer encoder on synthetic token
// sequences (configs/bench_transformer.yaml; its data are written here, tokens/s), each at worker threads
// 1..cores (1 intra-op thread each) and at 1 worker x cores intra-op threads; the single-thread sgemm peak; and
// the PyTorch baselines (tools/bench_pytorch.py, tools/bench_text_pytorch.py: same models, data, batches and
// steps). Every configuration runs in its own child process (this executable with --run, or Python), so each
// gets a fresh heap and its own peak RSS, and only once the cores are idle. tools/bench.sh runs it in one command.
//   build/mtl_bench [--models lenet,mlp,transformer] [--pytorch tools/bench_pytorch.py] [--json bench.json]
//   build/mtl_bench --quick          # 2 + 3 steps of every mtl row, one run each, no baseline (ctest bench.quick)
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <ATen/ATen.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <thread>

#include "mtl/core/error.h"
#include "mtl/data/multi_fashion.h"
#include "mtl/run/assembler.h"
#include "mtl/run/batch_plan.h"
#include "mtl/run/trainer.h"
#include "tools/bench_common.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace mtl_bench {

double num(const json& r, const char* key) { return r[key].get<double>(); }

std::string fixed(double v, int digits) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// ------------------------------------------------------------------ the rows' models and their FLOPs

// Synthetic text (configs/bench_transformer.yaml): row g has text_length(g) tokens with <cls> (16..128), word j
// (1-based) is "w<text_token(g, j)>", and its topic is text_token(g, 1) % 4.
int64_t text_length(int64_t g) { return 16 + (g * 7919 + 104729) % 113; }
int64_t text_token(int64_t g, int64_t j) { return 3 + (g * 2654435761LL + j * 40503) % 7997; }
constexpr int64_t kTextTrainRows = 8192, kTextTestRows = 512;

// Training FLOPs per example: forward MACs x 2 FLOP/MAC x 3 (backward ~= 2x forward). Pooling, activations,
// norms and losses are ignored. Transformer: per real token and layer 4 D^2 + 2 D F MACs, plus 2 n D for the
// scores and weighted values over the example's n tokens (mean over the training rows).
double train_flops(const std::string& model) {
  if (model == "lenet") return 6.0 * (28 * 28 * 10 * 81 + 10 * 10 * 20 * 10 * 25 + 500 * 50 + 2 * 50 * 10);
  if (model == "mlp") return 6.0 * (1296.0 * 2048 + 2048.0 * 2048 + 2 * 2048 * 10);
  if (model != "transformer") return 0.0;  // not counted (the table prints "-")
  const double D = 128, F = 256, layers = 2;
  double n = 0, n2 = 0;
  for (int64_t g = 0; g < kTextTrainRows; ++g) {
    n += double(text_length(g)) / kTextTrainRows;
    n2 += double(text_length(g) * text_length(g)) / kTextTrainRows;
  }
  return 6.0 * (layers * ((4 * D * D + 2 * D * F) * n + 2 * D * n2) + D * 4);
}

ModelSpec model_spec(const std::string& model, const BenchArgs& a) {
  std::vector<std::string> data;
  if (a.train_size > 0) data = {"data.train_size=" + std::to_string(a.train_size), "data.test_size=1000"};
  if (model == "lenet") return {"MultiLeNet", "configs/multi_fashion.yaml", data};
  data.push_back("model.backbone={type: mlp, hidden: [2048, 2048]}");
  if (model == "mlp") return {"MLP-2048-2048", "configs/multi_fashion.yaml", data};
  if (model == "transformer")
    return {"Transformer", "configs/bench_transformer.yaml",
            {"data.train=" + a.text_data + "/train.jsonl", "data.test=" + a.text_data + "/test.jsonl"}, true};
  if (model == "sotu")  // tools/prepare_sotu.py writes the data (bench.sh runs it when missing)
    return {"SOTU Transformer", "configs/sotu.yaml", {}, true};
  data.pop_back();
  if (model == "heads16") return {"16 heads x 1024", "configs/multi_fashion_16_heads.yaml", data};
  data.push_back("model.backbone={type: mlp, hidden: [2048, 2048, 2048, 2048, 2048, 2048, 2048, 2048]}");
  if (model == "deep_mlp") return {"MLP 8 x 2048", "configs/multi_fashion.yaml", data};
  throw mtl::Error("--models", "unknown model '" + model + "' (known: lenet, mlp, transformer, sotu, heads16, deep_mlp)");
}

// Writes the synthetic text splits into `dir` unless they are there.
void write_text_data(const std::string& dir) {
  fs::create_directories(dir);
  for (auto [name, first, rows] : {std::tuple{"train", 0L, kTextTrainRows}, {"test", kTextTrainRows, kTextTestRows}}) {
    const fs::path path = fs::path(dir) / (std::string(name) + ".jsonl"), tmp = path.string() + ".tmp";
    if (fs::exists(path)) continue;
    std::ofstream out(tmp);
    for (int64_t g = first; g < first + rows; ++g) {
      std::string text;
      for (int64_t j = 1; j < text_length(g); ++j) text += (j > 1 ? " w" : "w") + std::to_string(text_token(g, j));
      out << json{{"text", text}, {"topic", text_token(g, 1) % 4}}.dump() << "\n";
    }
    if (!out.flush()) throw mtl::Error(tmp.string(), "cannot write the benchmark's text data");
    fs::rename(tmp, path);
  }
}

// ------------------------------------------------------------------ process statistics

double peak_rss_mb() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // kB
  return 0.0;
}
// CPU seconds all processes have spent busy since boot (/proc/stat, first line).
double system_busy_seconds() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  return (user + nice + system + irq + softirq + steal) / double(sysconf(_SC_CLK_TCK));
}
rusage self_usage() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u;
}
double self_cpu_seconds() {
  rusage u = self_usage();
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}
// Cores kept busy by *other* processes over `seconds` (a benchmark needs this near 0).
double background_cores(double seconds) {
  const double busy0 = system_busy_seconds(), self0 = self_cpu_seconds();
  auto t0 = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  return ((system_busy_seconds() - busy0) - (self_cpu_seconds() - self0)) / seconds_since(t0);
}

// ------------------------------------------------------------------ one configuration (child process)

// Times the trainer's steps warmup+1 .. warmup+steps: from the end of the last warm-up step to the end of the
// last timed step, everything the loop does in between (loader wait, engine step, the built-in observers).
class StepTimer : public mtl::TrainObserver {
 public:
  StepTimer(int64_t warmup, int64_t steps) : warmup_(warmup), end_(warmup + steps) {}
  void epoch_started(const mtl::TrainPosition& pos, int64_t) override {
    if (pos.step > warmup_ && pos.step < end_) crossed_epoch_ = true;
  }
  void step_done(const mtl::TrainPosition& pos, const mtl::StepResult& r) override {
    const auto now = Clock::now();
    if (pos.step == warmup_) {
      last_ = now;
      busy0_ = system_busy_seconds(), self0_ = self_cpu_seconds(), faults0_ = double(self_usage().ru_minflt);
    }
    if (pos.step <= warmup_ || pos.step > end_) return;
    step_seconds_.push_back(std::chrono::duration<double>(now - last_).count());
    last_ = now;
    losses_.push_back(r.total_loss);
    examples_ += r.examples;
    gradients_ += r.timings.gradients, update_ += r.timings.update;
    if (pos.step == end_) finish();
  }
  json result() const;

 private:
  void finish() {
    for (double s : step_seconds_) wall_ += s;
    cpu_ = self_cpu_seconds() - self0_;
    background_ = std::max(0.0, (system_busy_seconds() - busy0_ - cpu_) / wall_);
    faults_ = double(self_usage().ru_minflt) - faults0_;
    rss_ = peak_rss_mb();  // before the final evaluation
  }
  int64_t warmup_, end_, examples_ = 0;
  bool crossed_epoch_ = false;
  Clock::time_point last_;
  std::vector<double> step_seconds_, losses_;
  double gradients_ = 0, update_ = 0, busy0_ = 0, self0_ = 0, faults0_ = 0;
  double wall_ = 0, cpu_ = 0, background_ = 0, faults_ = 0, rss_ = 0;
};

json StepTimer::result() const {
  const auto timed = static_cast<int64_t>(step_seconds_.size());
  if (timed != end_ - warmup_)
    throw mtl::Error("mtl_bench", "the run stopped after " + std::to_string(warmup_ + timed) + " of " +
                                      std::to_string(end_) + " steps: lower --steps/--warmup or raise the train size");
  if (crossed_epoch_) throw mtl::Error("mtl_bench", "the timed steps cross an epoch boundary: lower --steps");
  const size_t k = std::max<size_t>(1, losses_.size() / 5);  // loss trend: means of the first and last fifth
  double first = 0, last = 0;
  for (size_t i = 0; i < k; ++i) first += losses_[i] / double(k), last += losses_[losses_.size() - k + i] / double(k);
  std::vector<double> sorted = step_seconds_;
  std::sort(sorted.begin(), sorted.end());
  const double n = double(timed), other = wall_ - gradients_ - update_;
  return {{"seconds", wall_}, {"samples_per_s", double(examples_) / wall_}, {"step_ms", 1e3 * wall_ / n},
          {"median_step_ms", 1e3 * sorted[sorted.size() / 2]}, {"other_ms", 1e3 * other / n},
          {"gradients_ms", 1e3 * gradients_ / n}, {"update_ms", 1e3 * update_ / n}, {"stall_share", other / wall_},
          {"peak_rss_mb", rss_}, {"page_faults_per_step", faults_ / n}, {"cpu_cores_used", cpu_ / wall_},
          {"background_cores", background_}, {"first_loss", losses_.front()}, {"last_loss", losses_.back()},
          {"first_fifth_loss", first}, {"last_fifth_loss", last}, {"trains", last < first}};
}

// The run's first epoch, as the trainer plans it, and its training split.
std::pair<std::shared_ptr<mtl::Dataset>, std::vector<std::vector<int64_t>>> first_epoch(const mtl::Run& run) {
  std::shared_ptr<mtl::Dataset> train = run.data->open(mtl::Split::kTrain);
  mtl::BatchPlan plan(*train, run.config.trainer, run.config.data.task_sampler, run.config.source.file());
  return {train, plan.epoch(0)};
}

mtl::Run assemble_row(const ModelSpec& m, const BenchArgs& a, std::vector<std::string> sets) {
  if (m.text) write_text_data(a.text_data);
  sets.insert(sets.begin(), m.overrides.begin(), m.overrides.end());
  sets.insert(sets.end(), a.sets.begin(), a.sets.end());
  return mtl::assemble(mtl::Config::load(m.config, sets));
}

json run_one(const BenchArgs& a) {
  std::string model;
  int workers = 0, intra = 0;
  std::istringstream spec(a.run);
  if (!std::getline(spec, model, ':') || !(spec >> workers) || spec.get() != ':' || !(spec >> intra))
    throw mtl::Error("--run", "expected model:workers:intra, got '" + a.run + "'");
  const ModelSpec m = model_spec(model, a);
  std::string tmp = (fs::temp_directory_path() / "mtl_bench.XXXXXX").string();
  if (!mkdtemp(tmp.data())) throw mtl::Error(tmp, "cannot create a temporary run directory");
  const int64_t total = a.warmup + a.steps;
  // workers 0: `threads: auto`, the plan the trainer's probe picks (mtl/run/thread_plan.h).
  const std::string threads = workers == 0 ? "auto" : std::to_string(workers);
  const std::string intra_threads = workers == 0 ? "auto" : std::to_string(intra);
  mtl::Run run = assemble_row(m, a, {"trainer.threads=" + threads, "trainer.intra_op_threads=" + intra_threads,
                                     "trainer.epochs=1",
                                     "trainer.max_steps=" + std::to_string(total), "trainer.eval_interval=0",
                                     "trainer.checkpoint_interval=0", "trainer.log_interval=" + std::to_string(total + 1),
                                     "trainer.run_dir=" + tmp + "/run", "baselines=none"});
  StepTimer timer(a.warmup, a.steps);
  mtl::TrainRunOptions options;
  options.progress = false;
  options.observers = {&timer};
  try {
    mtl::train(run, options);
  } catch (...) {
    fs::remove_all(tmp);
    throw;
  }
  if (workers == 0) {  // the plan the probe chose, from the run's metrics log
    std::ifstream log(tmp + "/run/metrics.jsonl");
    for (std::string line; std::getline(log, line);) {
      json e = json::parse(line);
      if (e["event"] != "thread_plan") continue;
      workers = static_cast<int>(e["workers"].get<double>());
      intra = static_cast<int>(e["intra_op_threads"].get<double>());
    }
  }
  fs::remove_all(tmp);
  json j = timer.result();
  if (m.text) {  // real tokens of the timed steps' batches (padding excluded)
    const auto [train, batches] = first_epoch(run);
    const std::vector<int64_t> lengths = train->lengths();
    double tokens = 0;
    for (int64_t s = a.warmup; s < total; ++s)
      for (int64_t i : batches[s]) tokens += double(lengths[i]);
    j["tokens_per_s"] = tokens / j["seconds"].get<double>();
  }
  const mtl::GradientKind kind = run.weighting->needs();
  j.update({{"weighting", run.config.weighting.method},
            {"space", kind == mtl::GradientKind::kWeightedLoss  ? "loss"
                      : kind == mtl::GradientKind::kSharedTaskGrads ? "parameters"
                                                                      : "representation"}});
  j.update({{"framework", "mtl"}, {"model", model}, {"workers", workers}, {"intra_op_threads", intra},
            {"auto", threads == "auto"},
            {"threads", workers * intra}, {"batch_size", run.config.trainer.batch_size}, {"warmup", a.warmup},
            {"steps", a.steps}});
  return j;
}

// ------------------------------------------------------------------ inputs of the PyTorch baselines

// The MultiFashion train split's IDX cache prefix (the cache is built if missing).
std::string data_prefix(const BenchArgs& a) {
  mtl::Run run = assemble_row(model_spec("lenet", a), a, {});
  auto* source = dynamic_cast<const mtl::MultiFashionSource*>(run.data.get());
  if (!source) throw mtl::Error("configs/multi_fashion.yaml", "does not use MultiFashion data");
  run.data->open(mtl::Split::kTrain);
  return mtl::multi_fashion_cache_prefix(source->options(), mtl::Split::kTrain);
}

// The token batches a text row trains on (its first warmup + steps) and the model's shape, as JSON for
// tools/bench_text_pytorch.py: {"model", "vocab_size", "positions", "dim", "heads", "layers", "ffn_dim",
// "dropout", "pooling", "optimizer": {"type", "lr", "weight_decay"}, "tasks": [{"name", "label", "kind": class
// | real, "outputs"}], "batches": [{"ids", "targets": {label: values}}]}.
std::string text_batches_file(const BenchArgs& a, const std::string& model) {
  mtl::Run run = assemble_row(model_spec(model, a), a, {});
  const mtl::ConfigNode& backbone = run.config.model.backbone;
  json j{{"model", model},
         {"dim", backbone.get<int64_t>("dim", 0)},
         {"heads", backbone.get<int64_t>("heads", 0)},
         {"layers", backbone.get<int64_t>("layers", 0)},
         {"ffn_dim", backbone.get<int64_t>("ffn_dim", 0)},
         {"dropout", backbone.get<double>("dropout", 0.0)},
         {"pooling", backbone.get<std::string>("pooling", "first")},
         {"optimizer", {{"type", run.config.optimizer.type}, {"lr", run.config.optimizer.lr},
                        {"weight_decay", run.config.optimizer.weight_decay}}},
         {"tasks", json::array()},
         {"batches", json::array()}};
  for (const auto& p : run.model->named_parameters()) {  // backbone.embedding.weight, backbone.position.weight
    const std::string& name = p.key();
    for (auto [suffix, key] : {std::pair{".embedding.weight", "vocab_size"}, {".position.weight", "positions"}})
      if (name.size() > strlen(suffix) && name.compare(name.size() - strlen(suffix), strlen(suffix), suffix) == 0)
        j[key] = p.value().size(0);
  }
  if (!j.contains("vocab_size") || !j.contains("positions") || backbone.type() != "transformer")
    throw mtl::Error(run.config.source.file(), "the benchmark's text baseline needs a transformer backbone with "
                                               "learned positions");
  for (const mtl::TaskSpec& t : run.tasks) {
    if (t.label.kind != mtl::LabelKind::kClass && t.label.kind != mtl::LabelKind::kReal)
      throw mtl::Error(run.config.source.file(), "task '" + t.name + "': the text baseline has class and real heads only");
    j["tasks"].push_back({{"name", t.name}, {"label", t.label.name},
                          {"kind", t.label.kind == mtl::LabelKind::kClass ? "class" : "real"}, {"outputs", t.label.size}});
  }
  const auto [train, batches] = first_epoch(run);
  for (int64_t s = 0; s < std::min<int64_t>(a.warmup + a.steps, int64_t(batches.size())); ++s) {
    mtl::Batch b = train->batch(batches[s]);
    at::Tensor ids = b.inputs.begin()->second.contiguous();
    std::vector<std::vector<int64_t>> rows;
    for (int64_t r = 0; r < ids.size(0); ++r)
      rows.emplace_back(ids[r].data_ptr<int64_t>(), ids[r].data_ptr<int64_t>() + ids.size(1));
    json targets;
    for (const mtl::TaskSpec& t : run.tasks) {
      at::Tensor y = b.targets.at(t.label.name).contiguous();
      if (t.label.kind == mtl::LabelKind::kClass)
        targets[t.label.name] = std::vector<int64_t>(y.data_ptr<int64_t>(), y.data_ptr<int64_t>() + y.numel());
      else {
        y = y.to(at::kDouble);
        targets[t.label.name] = std::vector<double>(y.data_ptr<double>(), y.data_ptr<double>() + y.numel());
      }
    }
    j["batches"].push_back({{"ids", rows}, {"targets", targets}});
  }
  const std::string path = a.text_data + "/batches_" + model + "_" + std::to_string(a.warmup + a.steps) + ".json";
  std::ofstream(path) << j.dump() << "\n";
  return path;
}

// ------------------------------------------------------------------ driver

// Best-of-reps GFLOP/s of an n x n float matmul at `threads` intra-op threads.
double sgemm_gflops(int threads, int64_t n = 1024, int reps = 10) {
  at::set_num_threads(threads);
  at::Tensor x = at::randn({n, n}), y = at::randn({n, n}), z = at::empty({n, n});
  double best = 1e30;
  for (int i = 0; i < reps + 3; ++i) {
    auto t0 = Clock::now();
    at::mm_out(z, x, y);
    if (i >= 3) best = std::min(best, seconds_since(t0));
  }
  return 2.0 * double(n * n * n) / best / 1e9;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// glibc malloc settings that keep freed memory in the process (else every large tensor is a fresh mmap whose
// pages fault in again every step). mtl sets the same values itself at startup (mtl/core/allocator.h); the
// PyTorch baseline gets them through the environment, so both frameworks run on the same allocator settings.
constexpr const char* kTunedMalloc =
    "GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824";
std::string allocator_label(const BenchArgs& a) {
  return a.default_malloc ? "glibc malloc defaults for both (MTL_MALLOC_TUNING=0)"
                          : "mmap threshold 32 MiB, trim threshold 1 GiB for both (mtl: mallopt; PyTorch: " +
                                std::string(kTunedMalloc) + ")";
}

// Runs `cmd` (a child benchmark process) and returns the last JSON line it prints on stdout.
json run_child(const std::string& cmd) {
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) throw mtl::Error("mtl_bench", "cannot start " + cmd);
  std::string out, last, line;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
  const int status = pclose(pipe);
  for (std::istringstream in(out); std::getline(in, line);)
    if (!line.empty() && line[0] == '{') last = line;
  if (status != 0 || last.empty())
    throw mtl::Error("mtl_bench", "benchmark child failed (status " + std::to_string(status) + "): " + cmd);
  return json::parse(last);
}

std::string mtl_command(const BenchArgs& a, const std::string& model, int workers, int intra,
                        const std::vector<std::string>& sets) {
  std::ostringstream cmd;
  cmd << (a.default_malloc ? "MTL_MALLOC_TUNING=0 " : "") << shell_quote(fs::read_symlink("/proc/self/exe"))
      << " --run " << model << ":" << workers << ":" << intra << " --steps " << a.steps << " --warmup " << a.warmup
      << " --train-size " << a.train_size << " --text-data " << shell_quote(a.text_data);
  for (const auto& s : a.sets) cmd << " --set " << shell_quote(s);
  for (const auto& s : sets) cmd << " --set " << shell_quote(s);
  return cmd.str();
}

// `input`: the IDX prefix (images) or the token batches file (text).
std::string pytorch_command(const BenchArgs& a, const std::string& model, const std::string& input, int threads,
                            const std::string& format) {
  std::ostringstream cmd;
  cmd << (a.default_malloc ? "" : std::string(kTunedMalloc) + " ") << shell_quote(a.python) << " ";
  if (model_spec(model, a).text)  // the text baseline lives next to the image one
    cmd << shell_quote((fs::path(a.pytorch).parent_path() / "bench_text_pytorch.py").string()) << " --batches ";
  else
    cmd << shell_quote(a.pytorch) << " --model " << model << " --memory-format " << format << " --data ";
  cmd << shell_quote(input) << " --one-threads " << threads << " --steps " << a.steps << " --warmup " << a.warmup;
  return cmd.str();
}

// Waits (up to `max_wait` seconds) until other processes leave the cores idle: timings taken while something
// else runs are meaningless, worst of all for OpenMP, whose threads spin at every barrier.
void wait_until_quiet(double max_wait) {
  auto t0 = Clock::now();
  double bg = background_cores(0.5);
  for (bool said = false; bg > 0.15 && seconds_since(t0) < max_wait; bg = background_cores(1.0), said = true)
    if (!said) std::cerr << "(waiting for other processes: " << fixed(bg, 2) << " cores busy) " << std::flush;
  if (bg > 0.15) std::cerr << "(going ahead with " << fixed(bg, 2) << " cores busy) " << std::flush;
}

}  // namespace mtl_bench

namespace {
using namespace mtl_bench;

std::string setting_label(const json& r) {
  if (r["framework"] == "pytorch")
    return std::string(r.value("memory_format", "") == "channels_last" ? "pytorch NHWC" : "pytorch") +
           " set_num_threads(" + std::to_string(r["threads"].get<int>()) + ")";
  int w = r["workers"].get<int>(), i = r["intra_op_threads"].get<int>();
  if (r.value("auto", false)) return "mtl auto = " + std::to_string(w) + "x" + std::to_string(i);
  return "mtl " + std::to_string(w) + (w == 1 ? " worker  x " : " workers x ") + std::to_string(i) + " intra";
}


// Runs every configuration `repeats` times, round-robin (a slow spell of the machine hits all alike); each row
// is the run with the median throughput, with every run's figure kept in samples_per_s_runs.
std::vector<json> measure(const BenchArgs& a, int cores) {
  std::vector<std::pair<std::string, std::string>> jobs;  // label, command
  for (const std::string& model : a.models) {
    for (int w = 1; w <= cores + 1; ++w) {
      const int workers = w <= cores ? w : 1, intra = w <= cores ? 1 : cores;
      if (w > cores && cores == 1) break;
      jobs.push_back({"mtl " + model + " workers=" + std::to_string(workers) + " intra=" + std::to_string(intra),
                      mtl_command(a, model, workers, intra)});
    }
    if (cores > 1) jobs.push_back({"mtl " + model + " threads=auto", mtl_command(a, model, 0, 0)});
    if (a.pytorch.empty()) continue;
    // The plain NCHW loop, and for MultiLeNet the channels_last one (the layout mtl's conv backbones use).
    const bool text = model_spec(model, a).text;
    const std::string input = text ? text_batches_file(a, model) : data_prefix(a);
    for (const std::string format : {"contiguous", "channels_last"})
      for (int k = 1; k <= cores && (format == std::string("contiguous") || model == "lenet"); ++k)
        jobs.push_back({"pytorch " + model + " " + format + " threads=" + std::to_string(k),
                        pytorch_command(a, model, input, k, format)});
  }
  std::vector<std::vector<json>> runs(jobs.size());
  for (int rep = 0; rep < a.repeats; ++rep)
    for (size_t j = 0; j < jobs.size(); ++j) {
      std::cerr << "  [" << rep + 1 << "/" << a.repeats << "] " << jobs[j].first << " ... " << std::flush;
      wait_until_quiet(a.max_wait);
      const json& r = runs[j].emplace_back(run_child(jobs[j].second));
      if (r.contains("tokens_per_s")) std::cerr << fixed(num(r, "tokens_per_s"), 0) << " tokens/s, ";
      std::cerr << fixed(num(r, "samples_per_s"), 0) << " samples/s, loss " << fixed(num(r, "first_loss"), 3)
                << " -> " << fixed(num(r, "last_loss"), 3) << ", background " << fixed(num(r, "background_cores"), 2)
                << " cores\n";
    }
  std::vector<json> rows;
  for (auto& rs : runs) {
    std::vector<double> sps;
    for (const json& r : rs) sps.push_back(num(r, "samples_per_s"));
    std::sort(rs.begin(), rs.end(), [](const json& x, const json& y) {
      return num(x, "samples_per_s") < num(y, "samples_per_s");
    });
    rows.push_back(rs[rs.size() / 2]);
    rows.back()["samples_per_s_runs"] = sps;
  }
  return rows;
}

// The table: one line per row, then per model the best mtl row against the best PyTorch row.
std::string table(const BenchArgs& a, std::vector<json>& rows, double peak1, json& summary) {
  std::ostringstream out;
  out << std::left << std::setw(18) << "model" << std::setw(30) << "setting" << std::right << std::setw(10)
      << "samples/s" << std::setw(14) << "runs" << std::setw(8) << "speedup" << std::setw(6) << "eff." << std::setw(8)
      << "GFLOP/s" << std::setw(10) << "%peak*thr" << std::setw(26) << "step ms=other+grad+upd" << std::setw(7)
      << "cores" << std::setw(8) << "faults" << std::setw(7) << "RSS MB" << std::setw(17) << "loss first-last"
      << std::setw(9) << "bg cores" << "\n";
  for (json& r : rows) {
    double base = 0;  // the same framework's (and layout's) 1-thread row
    for (const json& o : rows)
      if (o["framework"] == r["framework"] && o["model"] == r["model"] && o["threads"] == 1 &&
          o.value("memory_format", "") == r.value("memory_format", ""))
        base = num(o, "samples_per_s");
    const double sps = num(r, "samples_per_s"), threads = num(r, "threads");
    const auto [lo, hi] = std::minmax_element(r["samples_per_s_runs"].begin(), r["samples_per_s_runs"].end());
    std::string ms = fixed(num(r, "step_ms"), 1);
    if (r["framework"] == "mtl")
      ms += "=" + fixed(num(r, "other_ms"), 2) + "+" + fixed(num(r, "gradients_ms"), 1) + "+" + fixed(num(r, "update_ms"), 2);
    r["gflops"] = sps * train_flops(r["model"]) / 1e9;
    out << std::left << std::setw(18) << model_spec(r["model"], a).label << std::setw(30) << setting_label(r)
        << std::right << std::setw(10) << fixed(sps, 0) << std::setw(14)
        << (fixed(lo->get<double>() / 1e3, 1) + "-" + fixed(hi->get<double>() / 1e3, 1) + "k") << std::setw(8)
        << fixed(sps / base, 2) << std::setw(6) << fixed(sps / base / threads, 2) << std::setw(8)
        << (num(r, "gflops") > 0 ? fixed(num(r, "gflops"), 1) : "-") << std::setw(10)
        << (num(r, "gflops") > 0 ? fixed(100 * num(r, "gflops") / (peak1 * threads), 1) : "-")
        << std::setw(26) << ms << std::setw(7) << fixed(num(r, "cpu_cores_used"), 2) << std::setw(8)
        << fixed(num(r, "page_faults_per_step"), 0) << std::setw(7) << fixed(num(r, "peak_rss_mb"), 0)
        << std::setw(17) << (fixed(num(r, "first_fifth_loss"), 3) + "-" + fixed(num(r, "last_fifth_loss"), 3))
        << std::setw(9) << fixed(num(r, "background_cores"), 2) << "\n";
  }
  out << "step ms: wall time per timed step; mtl: other (loader wait, observers, loop) + engine gradients + update "
         "(optimizer step, hooks); pytorch: batch gather + forward/backward/step\n"
         "cores: CPU cores the process kept busy; faults: minor page faults per step; loss: mean total loss of the "
         "first and last fifth of the timed steps; bg cores: cores other processes kept busy (should be ~0)\n\n";
  for (const std::string& model : a.models) {
    const json* best[3] = {nullptr, nullptr, nullptr};  // mtl, plain pytorch, pytorch channels_last
    for (const json& r : rows) {
      const int f = r["framework"] == "mtl" ? 0 : r.value("memory_format", "") == "channels_last" ? 2 : 1;
      if (r["model"] == model && (!best[f] || num(r, "samples_per_s") > num(*best[f], "samples_per_s"))) best[f] = &r;
    }
    if (!best[0]) continue;
    json& s = summary[model];
    auto rate = [](const json& r) {
      return fixed(num(r, "samples_per_s"), 0) + " samples/s" +
             (r.contains("tokens_per_s") ? " = " + fixed(num(r, "tokens_per_s"), 0) + " tokens/s" : "");
    };
    out << model_spec(model, a).label << ": mtl best " << rate(*best[0]) << " (" << setting_label(*best[0]) << ")";
    s["mtl_best_samples_per_s"] = (*best[0])["samples_per_s"];
    s["mtl_best_setting"] = setting_label(*best[0]);
    for (int f = 1; f < 3; ++f) {
      if (!best[f]) continue;
      const double ratio = num(*best[0], "samples_per_s") / num(*best[f], "samples_per_s");
      out << " / PyTorch" << (f == 2 ? " NHWC" : "") << " best " << rate(*best[f]) << " ("
          << setting_label(*best[f]) << ") = " << fixed(ratio, 2);
      s[f == 1 ? "mtl_over_pytorch" : "mtl_over_pytorch_nhwc"] = ratio;
      s[f == 1 ? "pytorch_best_samples_per_s" : "pytorch_nhwc_best_samples_per_s"] = (*best[f])["samples_per_s"];
    }
    out << "\n";
    // The default: threads auto against PyTorch's best thread setting and layout.
    const json* pytorch = best[1] && best[2] ? (num(*best[1], "samples_per_s") > num(*best[2], "samples_per_s") ? best[1] : best[2])
                                             : best[1] ? best[1] : best[2];
    for (const json& r : rows)
      if (r["model"] == model && r.value("auto", false) && pytorch) {
        const double ratio = num(r, "samples_per_s") / num(*pytorch, "samples_per_s");
        out << model_spec(model, a).label << ": mtl threads auto (" << setting_label(r) << ") " << rate(r)
            << " / PyTorch best " << rate(*pytorch) << " (" << setting_label(*pytorch) << ") = " << fixed(ratio, 2)
            << "\n";
        s["auto_over_pytorch_best"] = ratio;
        s["auto_setting"] = setting_label(r);
      }
  }
  for (const json& r : rows) {
    const std::string name = model_spec(r["model"], a).label + " " + setting_label(r);
    if (!r["trains"].get<bool>()) out << "WARNING: " << name << ": the loss did not decrease over the timed steps\n";
    if (num(r, "background_cores") > 0.25)
      out << "WARNING: " << name << ": other processes kept " << fixed(num(r, "background_cores"), 2)
          << " cores busy; its timing is unreliable\n";
  }
  return out.str();
}

int driver(BenchArgs a) {
  if (a.quick) a.steps = 3, a.warmup = 2, a.repeats = 1, a.max_wait = 0, a.pytorch.clear(), a.train_size = 2048;
  const int cores = static_cast<int>(a.max_threads > 0 ? a.max_threads : mtl::physical_cores());
  for (const std::string& model : a.models) model_spec(model, a);  // rejects an unknown name first
  std::cerr << "mtl_bench: " << cores << " physical cores; " << a.warmup << " warmup + " << a.steps
            << " timed steps per configuration, " << a.repeats << " runs each; allocator: " << allocator_label(a)
            << "\n  sgemm 1024^3 ... " << std::flush;
  wait_until_quiet(a.max_wait);
  const double peak1 = sgemm_gflops(1), peak_all = sgemm_gflops(cores);
  std::cerr << fixed(peak1, 1) << " GFLOP/s at 1 thread, " << fixed(peak_all, 1) << " at " << cores << "\n";
  std::vector<json> rows = measure(a, cores);

  std::ostringstream out;
  out << "\nmtl training benchmark: mtl::train on configs/ (MultiFashion 36x36: batch 256, SGD lr 0.01 momentum "
         "0.9; synthetic text: batch 64, Adam lr 1e-3), "
      << a.warmup << " warmup + " << a.steps << " timed steps; " << cores << " physical cores; median of "
      << a.repeats << " runs per row (range in 'runs')\nallocator: " << allocator_label(a)
      << "\nsgemm peak (at::mm 1024x1024 float): " << fixed(peak1, 1) << " GFLOP/s at 1 thread, " << fixed(peak_all, 1)
      << " GFLOP/s at " << cores << " threads\n";
  for (const std::string& model : a.models)
    out << "training FLOPs per example (3 x forward, 2 FLOP/MAC): " << model_spec(model, a).label << " "
        << fixed(train_flops(model) / 1e6, 2) << " MFLOP\n";
  json summary = json::object();
  std::cout << out.str() << "\n" << table(a, rows, peak1, summary) << std::flush;
  if (!a.json_path.empty()) {
    json j{{"cores", cores}, {"sgemm_gflops_1_thread", peak1}, {"sgemm_gflops_all_threads", peak_all},
           {"warmup", a.warmup}, {"steps", a.steps}, {"allocator", allocator_label(a)}, {"rows", rows},
           {"summary", summary}};
    for (const std::string& model : a.models) j["train_flops_per_example"][model] = train_flops(model);
    if (!(std::ofstream(a.json_path) << j.dump(2) << "\n")) throw mtl::Error(a.json_path, "cannot write the results");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace mtl_bench;
  BenchArgs a;
  CLI::App app{"mtl_bench: training throughput of mtl train against plain PyTorch (see tools/bench.sh)"};
  app.add_option("--steps", a.steps, "timed steps per configuration")->check(CLI::PositiveNumber);
  app.add_option("--warmup", a.warmup, "untimed steps before timing")->check(CLI::PositiveNumber);
  app.add_option("--train-size", a.train_size, "MultiFashion data.train_size (0 = the config's)");
  app.add_option("--max-threads", a.max_threads, "largest thread count (0 = physical cores)");
  app.add_option("--models", a.models, "rows to run: lenet, mlp, transformer, sotu")->delimiter(',');
  app.add_option("--set", a.sets, "config override for every mtl run, e.g. --set engine.balance=dynamic")
      ->type_name("KEY=VALUE");
  app.add_option("--text-data", a.text_data, "directory of the synthetic text data (written when missing)");
  app.add_option("--pytorch", a.pytorch, "the PyTorch baseline script (tools/bench_pytorch.py); empty = none");
  app.add_option("--python", a.python, "Python interpreter with torch for the baseline");
  app.add_flag("--default-malloc", a.default_malloc, "glibc malloc defaults for every configuration");
  app.add_option("--repeats", a.repeats, "runs per configuration, round-robin; the table shows the median")
      ->check(CLI::PositiveNumber);
  app.add_option("--max-wait", a.max_wait, "seconds to wait for idle cores before each configuration");
  app.add_option("--json", a.json_path, "also write the results as JSON to this file");
  app.add_flag("--quick", a.quick, "smoke test: 2 + 3 steps of every mtl row, one run, train size 2048, no baseline");
  app.add_flag("--print-data-prefix", a.print_data_prefix, "print the MultiFashion train split's IDX cache prefix");
  app.add_flag("--write-text-data", a.write_text_data, "write the synthetic text data into --text-data and exit");
  app.add_option("--methods", a.methods,
                 "weighting-method table instead: method specs (mgda, cagrad:c=0.4, ...) or 'all', each in both "
                 "spaces against ew")
      ->delimiter(',');
  app.add_option("--method-threads", a.method_threads, "worker counts of the method table (default: 1,cores)")
      ->delimiter(',');
  app.add_flag("--parallel", a.parallel,
               "model-parallelism and precision table instead: tasks, pipeline and bf16 against data parallelism");
  app.add_option("--run", a.run, "(internal) run one configuration model:workers:intra, print one JSON line");
  CLI11_PARSE(app, argc, argv);
  if (a.quick && app.count("--models") == 0) a.models = {"lenet", "mlp", "transformer"};
  if (!a.methods.empty() && app.count("--models") == 0) a.models = {"lenet", "sotu"};
  if (a.parallel && app.count("--models") == 0) a.models = {"heads16", "deep_mlp", "lenet", "mlp", "transformer"};
  try {
    if (a.print_data_prefix) std::cout << data_prefix(a) << "\n";
    if (a.write_text_data) write_text_data(a.text_data);
    if (!a.run.empty()) std::cout << run_one(a).dump() << "\n";
    if (a.print_data_prefix || a.write_text_data || !a.run.empty()) return 0;
    if (a.parallel) return parallel_driver(a);
    return a.methods.empty() ? driver(a) : methods_driver(a);
  } catch (const std::exception& e) {
    std::cerr << "mtl_bench: error: " << e.what() << "\n";
    return 1;
  }
}
