// mtl_bench: training-throughput benchmark of mtl's parallel engine on MultiFashion.
//
// Measures steady-state training steps (loader -> ParallelEngine::compute_gradients -> optimizer step) for
// the MultiLeNet hard-sharing model of configs/multi_fashion.yaml and for a compute-bound wide MLP, at
// worker threads 1..cores (1 intra-op thread each) and at 1 worker x cores intra-op threads; the
// single-thread sgemm peak of this machine; and the plain PyTorch baseline (tools/bench_pytorch.py: same
// models, data and steps). Prints one table (and writes JSON with --json). Every configuration runs in its
// own child process (this executable with --run, or the Python script), so each gets a fresh heap and its
// own peak RSS, and only once the cores are idle.
//   build/mtl_bench                                   # mtl rows only
//   build/mtl_bench --pytorch tools/bench_pytorch.py --json bench.json
//   build/mtl_bench --default-malloc                  # glibc malloc defaults for both frameworks
//   build/mtl_bench --print-data-prefix               # the train split's IDX cache files (for the baseline)
//   build/mtl_bench --models transformer --pytorch tools/bench_pytorch.py   # text: tokens/s (see below)
// Text mode (model `transformer`): a pre-LN Transformer encoder (dim 128, 2 layers, 4 heads, ffn 256, vocab 8000,
// learned positions, dropout 0.1) with a 4-class sequence-classification head on the <cls> token, trained with
// Adam lr 1e-3 on batches of 64 synthetic token sequences whose lengths are drawn deterministically in
// [16, 128] (each batch padded to its longest row; 8 distinct batches cycled). Throughput counts real tokens
// (padding excluded). The baseline is tools/bench_text_pytorch.py (next to --pytorch): the same architecture
// with nn.TransformerEncoderLayer(norm_first=True), the same data and steps.
// tools/bench.sh builds this and runs it with the baseline, in one command.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "backbones/backbone.h"
#include "heads/head.h"
#include "mtl/config/config_node.h"
#include "mtl/core/error.h"
#include "mtl/data/loader.h"
#include "mtl/data/multi_fashion.h"
#include "mtl/data/sampler.h"
#include "mtl/engine/experiment.h"
#include "mtl/engine/parallel_engine.h"
#include "mtl/engine/trainer.h"
#include "mtl/optim/optimizer.h"
#include "mtl/weighting/weighting.h"

using json = nlohmann::json;
using clock_type = std::chrono::steady_clock;

namespace {

struct BenchArgs {
  std::string config = "configs/multi_fashion.yaml";
  int64_t steps = 60;
  int64_t warmup = 5;
  int64_t train_size = 0;   // 0 = the config's
  int64_t max_threads = 0;  // 0 = physical cores
  std::vector<std::string> models{"lenet", "mlp"};
  std::vector<std::string> sets;  // extra --set overrides for every mtl run
  std::vector<int64_t> mlp_hidden{2048, 2048};
  int64_t text_batch = 64;  // text mode: sequences per batch
  std::string run;                          // child mode: "model:workers:intra"
  std::string pytorch;                      // tools/bench_pytorch.py ("" = no baseline)
  std::string python = "/usr/bin/python3";  // a Python with torch (Debian's python3-torch)
  double max_wait = 30;                     // seconds to wait for an idle machine before each configuration
  int repeats = 3;                          // runs per configuration (the median is reported)
  bool default_malloc = false;              // glibc defaults everywhere (else mtl tunes itself, Python gets kTunedMalloc)
  std::string json_path;
  bool print_data_prefix = false;
};

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

std::string fixed(double v, int digits) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

// ------------------------------------------------------------------ analytical FLOPs

// Training FLOPs per example: forward MACs x 2 FLOP/MAC x 3 (backward ~= 2x forward: gradients w.r.t.
// inputs and weights). Pooling, activations and losses are ignored (a few percent for MultiLeNet).
double lenet_train_flops() {
  const double c1 = 10, c2 = 20, out = 50, heads = 2, classes = 10;
  const double conv1 = 28.0 * 28 * c1 * (1 * 9 * 9);   // 36x36 -> 28x28, kernel 9
  const double conv2 = 10.0 * 10 * c2 * (c1 * 5 * 5);  // 14x14 -> 10x10, kernel 5
  const double fc = (c2 * 5 * 5) * out;                // 500 -> 50
  const double head = heads * out * classes;
  return 3.0 * 2.0 * (conv1 + conv2 + fc + head);
}

double mlp_train_flops(const std::vector<int64_t>& hidden) {
  double macs = 0, d = 36 * 36;
  for (int64_t h : hidden) {
    macs += d * double(h);
    d = double(h);
  }
  macs += 2 * d * 10;  // two 10-class heads
  return 3.0 * 2.0 * macs;
}

// ------------------------------------------------------------------ text mode data and model

constexpr int64_t kTextVocab = 8000, kTextDim = 128, kTextHeads = 4, kTextLayers = 2, kTextFfn = 256;
constexpr int64_t kTextMinLength = 16, kTextMaxLength = 128, kTextClasses = 4, kTextDistinctBatches = 8;

// Row g's length and tokens (tools/bench_text_pytorch.py uses the same formulas).
int64_t text_length(int64_t g) { return kTextMinLength + (g * 7919 + 104729) % (kTextMaxLength - kTextMinLength + 1); }
int64_t text_token(int64_t g, int64_t j) { return 3 + (g * 2654435761LL + j * 40503) % (kTextVocab - 3); }

struct TextBatch {
  mtl::Batch batch;
  int64_t tokens = 0;  // real tokens (no padding)
};

std::vector<TextBatch> text_batches(int64_t batch_size) {
  std::vector<TextBatch> out;
  for (int64_t b = 0; b < kTextDistinctBatches; ++b) {
    int64_t width = 0;
    for (int64_t r = 0; r < batch_size; ++r) width = std::max(width, text_length(b * batch_size + r));
    at::Tensor ids = at::zeros({batch_size, width}, at::kLong), labels = at::empty({batch_size}, at::kLong);
    int64_t* p = ids.data_ptr<int64_t>();
    TextBatch t;
    for (int64_t r = 0; r < batch_size; ++r) {
      const int64_t g = b * batch_size + r, n = text_length(g);
      p[r * width] = mtl::kClsTokenId;
      for (int64_t j = 1; j < n; ++j) p[r * width + j] = text_token(g, j);
      labels[r] = text_token(g, 1) % kTextClasses;
      t.tokens += n;
    }
    t.batch.size = batch_size;
    t.batch.inputs["text"] = ids;
    t.batch.targets["topic"] = labels;
    out.push_back(std::move(t));
  }
  return out;
}

// Mean real tokens per example over the distinct batches.
double text_mean_length(int64_t batch_size) {
  double sum = 0;
  for (int64_t g = 0; g < kTextDistinctBatches * batch_size; ++g) sum += double(text_length(g));
  return sum / double(kTextDistinctBatches * batch_size);
}

// Useful training FLOPs per example (real tokens only): per token and layer 4 D^2 (QKV, output projection)
// + 2 D F (feed-forward) + 2 n D (scores and weighted values over the example's n tokens) MACs.
double transformer_train_flops(int64_t batch_size) {
  const double n = text_mean_length(batch_size), D = kTextDim, F = kTextFfn;
  const double macs = n * kTextLayers * (4 * D * D + 2 * D * F + 2 * n * D) + D * kTextClasses;
  return 3.0 * 2.0 * macs;
}

bool is_text_model(const std::string& model) { return model == "transformer"; }

double train_flops(const std::string& model, const BenchArgs& a) {
  if (is_text_model(model)) return transformer_train_flops(a.text_batch);
  return model == "lenet" ? lenet_train_flops() : mlp_train_flops(a.mlp_hidden);
}

std::vector<std::string> model_overrides(const std::string& model, const BenchArgs& a) {
  if (model == "lenet" || is_text_model(model)) return {};  // the config's own model; text mode builds its own
  if (model == "mlp") {
    std::string hidden;
    for (int64_t h : a.mlp_hidden) hidden += (hidden.empty() ? "" : ", ") + std::to_string(h);
    return {"model.backbone={type: mlp, hidden: [" + hidden + "]}"};
  }
  throw std::runtime_error("unknown model '" + model + "' (known: lenet, mlp, transformer)");
}

std::string model_label(const std::string& model, const BenchArgs& a) {
  if (model == "lenet") return "MultiLeNet";
  if (is_text_model(model)) return "Transformer";
  std::string s = "MLP";
  for (int64_t h : a.mlp_hidden) s += "-" + std::to_string(h);
  return s;
}

// ------------------------------------------------------------------ sgemm peak

// Best-of-reps GFLOP/s of an n x n float matmul at `threads` intra-op threads.
double sgemm_gflops(int threads, int64_t n = 1024, int reps = 10) {
  at::set_num_threads(threads);
  at::Tensor a = at::randn({n, n}), b = at::randn({n, n}), c = at::empty({n, n});
  for (int i = 0; i < 3; ++i) at::mm_out(c, a, b);
  double best = 1e30;
  for (int i = 0; i < reps; ++i) {
    auto t0 = clock_type::now();
    at::mm_out(c, a, b);
    best = std::min(best, seconds_since(t0));
  }
  return 2.0 * double(n) * double(n) * double(n) / best / 1e9;
}

// ------------------------------------------------------------------ one configuration (child process)

double peak_rss_mb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
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

double minor_page_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_minflt);
}

double self_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// Cores kept busy by *other* processes over `seconds` (a benchmark needs this near 0).
double background_cores(double seconds) {
  const double busy0 = system_busy_seconds(), self0 = self_cpu_seconds();
  auto t0 = clock_type::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  return ((system_busy_seconds() - busy0) - (self_cpu_seconds() - self0)) / seconds_since(t0);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string part;
  while (std::getline(ss, part, sep)) out.push_back(part);
  return out;
}

std::vector<std::string> data_overrides(const BenchArgs& a) {
  if (a.train_size > 0) return {"data.train_size=" + std::to_string(a.train_size)};
  return {};
}

// Text mode: the Transformer encoder + classification head on the synthetic token batches, built through the
// same registries a config uses; no loader (the batches are made up front), so the time is all engine +
// optimizer.
json run_text(const BenchArgs& a, int workers, int intra) {
  mtl::DatasetSchema schema;
  schema.inputs.push_back({"text", {kTextMaxLength}, mtl::InputKind::kTokens, kTextVocab});
  schema.labels.push_back({"topic", mtl::LabelKind::kClass, kTextClasses, {}});
  const std::string yaml = "backbone: {type: transformer, dim: " + std::to_string(kTextDim) +
                           ", heads: " + std::to_string(kTextHeads) + ", layers: " + std::to_string(kTextLayers) +
                           ", ffn_dim: " + std::to_string(kTextFfn) + ", dropout: 0.1, positions: learned}\n" +
                           "head: classification\nloss: cross_entropy\nweighting: ew\n";
  mtl::Config cfg = mtl::Config::from_string(yaml, "bench_text.yaml");
  at::manual_seed(0);
  mtl::ConfigNode bn = cfg.root().component("backbone");
  mtl::Backbone backbone = mtl::backbone_registry().get(bn.type())(bn, schema);
  mtl::ConfigNode hn = cfg.root().component("head");
  mtl::TaskSpec task;
  task.name = "topic";
  task.head_type = hn.type();
  task.label = schema.labels[0];
  mtl::Head head = mtl::head_registry().get(hn.type()).make(hn, {backbone->output_dim(), task.label});
  mtl::ConfigNode ln = cfg.root().component("loss");
  task.loss_type = ln.type();
  task.loss = mtl::loss_registry().get(ln.type()).make(ln, task.label);
  mtl::MultiTaskModel model(backbone, std::vector<std::string>{"topic"}, std::vector<mtl::Head>{head});
  mtl::ConfigNode wn = cfg.root().component("weighting");
  std::unique_ptr<mtl::Weighting> weighting = mtl::weighting_registry().get(wn.type())(wn, {{"topic"}, {1.0}});
  cfg.check_unused();

  mtl::TrainerOptions trainer;
  trainer.threads = workers;
  trainer.intra_op_threads = intra;
  mtl::configure_torch_threads(trainer);
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(1e-3));
  const std::vector<mtl::TaskSpec> tasks{task};  // the engine keeps a reference
  std::unique_ptr<mtl::GradientEngine> engine =
      mtl::make_parallel_engine(model, tasks, *weighting, {workers, intra, 0, false});
  model->train();
  const std::vector<TextBatch> batches = text_batches(a.text_batch);

  const int64_t total = a.warmup + a.steps;
  double grads = 0, optim = 0;
  std::vector<double> losses;
  int64_t samples = 0, tokens = 0;
  clock_type::time_point timed_start = clock_type::now();
  double busy0 = 0, self0 = 0, faults0 = 0;
  for (int64_t step = 0; step < total; ++step) {
    if (step == a.warmup) {
      timed_start = clock_type::now();
      busy0 = system_busy_seconds();
      self0 = self_cpu_seconds();
      faults0 = minor_page_faults();
    }
    const TextBatch& b = batches[static_cast<size_t>(step % kTextDistinctBatches)];
    auto t1 = clock_type::now();
    mtl::StepResult r = engine->compute_gradients(b.batch, mtl::StepContext{step, 0, {}});
    auto t2 = clock_type::now();
    optimizer.step();
    auto t3 = clock_type::now();
    if (step < a.warmup) continue;
    grads += std::chrono::duration<double>(t2 - t1).count();
    optim += std::chrono::duration<double>(t3 - t2).count();
    losses.push_back(r.total_loss);
    samples += b.batch.size;
    tokens += b.tokens;
  }
  const double wall = seconds_since(timed_start);
  const double self_cpu = self_cpu_seconds() - self0;
  const size_t k = std::max<size_t>(1, losses.size() / 5);
  double first = 0, last = 0;
  for (size_t i = 0; i < k; ++i) {
    first += losses[i] / double(k);
    last += losses[losses.size() - k + i] / double(k);
  }
  json j;
  j["framework"] = "mtl";
  j["model"] = "transformer";
  j["workers"] = workers;
  j["intra_op_threads"] = intra;
  j["threads"] = workers * intra;
  j["batch_size"] = a.text_batch;
  j["train_size"] = a.text_batch * kTextDistinctBatches;
  j["warmup"] = a.warmup;
  j["steps"] = a.steps;
  j["seconds"] = wall;
  j["samples_per_s"] = double(samples) / wall;
  j["tokens_per_s"] = double(tokens) / wall;
  j["step_ms"] = 1e3 * wall / double(a.steps);
  j["wait_ms"] = 0.0;
  j["gradients_ms"] = 1e3 * grads / double(a.steps);
  j["optimizer_ms"] = 1e3 * optim / double(a.steps);
  j["stall_share"] = 0.0;
  j["peak_rss_mb"] = peak_rss_mb();
  j["page_faults_per_step"] = (minor_page_faults() - faults0) / double(a.steps);
  j["cpu_cores_used"] = self_cpu / wall;
  j["background_cores"] = std::max(0.0, (system_busy_seconds() - busy0 - self_cpu) / wall);
  j["first_loss"] = losses.front();
  j["last_loss"] = losses.back();
  j["first_fifth_loss"] = first;
  j["last_fifth_loss"] = last;
  j["trains"] = last < first;
  return j;
}

json run_one(const BenchArgs& a) {
  std::vector<std::string> spec = split(a.run, ':');
  if (spec.size() != 3) throw std::runtime_error("--run expects model:workers:intra, got '" + a.run + "'");
  const std::string model = spec[0];
  const int workers = std::stoi(spec[1]), intra = std::stoi(spec[2]);
  if (is_text_model(model)) return run_text(a, workers, intra);

  std::vector<std::string> sets = model_overrides(model, a);
  for (const auto& s : a.sets) sets.push_back(s);
  for (auto& s : data_overrides(a)) sets.push_back(s);
  sets.push_back("trainer.threads=" + std::to_string(workers));
  sets.push_back("trainer.intra_op_threads=" + std::to_string(intra));
  mtl::Experiment ex = mtl::build_experiment(mtl::Config::load(a.config, sets));
  if (ex.trainer.mode != "sync") throw std::runtime_error("mtl_bench times the sync engine (engine.mode: sync)");
  mtl::configure_torch_threads(ex.trainer);

  std::shared_ptr<mtl::Dataset> data = ex.data->open(mtl::Split::kTrain);
  std::unique_ptr<torch::optim::Optimizer> optimizer = mtl::make_optimizer(ex.optimizer, ex.model->parameters());
  const uint64_t seed = static_cast<uint64_t>(ex.trainer.seed);
  std::unique_ptr<mtl::GradientEngine> engine = mtl::make_parallel_engine(
      ex.model, ex.tasks, *ex.weighting, {workers, intra, seed, ex.trainer.balance == "dynamic"}, ex.make_model);
  ex.model->train();

  // Full batches only, epoch after epoch if the split is small.
  const int64_t total = a.warmup + a.steps;
  std::vector<std::vector<int64_t>> batches;
  for (int64_t epoch = 0; static_cast<int64_t>(batches.size()) < total; ++epoch) {
    auto more = mtl::make_batches(mtl::epoch_permutation(data->size(), seed, epoch), ex.trainer.batch_size, true);
    if (more.empty()) throw std::runtime_error("trainer.batch_size exceeds the training split");
    batches.insert(batches.end(), more.begin(), more.end());
  }
  batches.resize(total);
  mtl::Loader loader(data, std::move(batches), {ex.trainer.loader_workers, ex.trainer.prefetch});

  double wait = 0, grads = 0, optim = 0;
  std::vector<double> losses;
  int64_t samples = 0;
  clock_type::time_point timed_start = clock_type::now();
  double busy0 = 0, self0 = 0, faults0 = 0;
  mtl::Batch batch;
  for (int64_t step = 0; step < total; ++step) {
    if (step == a.warmup) {
      timed_start = clock_type::now();
      busy0 = system_busy_seconds();
      self0 = self_cpu_seconds();
      faults0 = minor_page_faults();
    }
    auto t0 = clock_type::now();
    if (!loader.next(batch)) throw std::runtime_error("the loader ran out of batches");
    auto t1 = clock_type::now();
    mtl::StepResult r = engine->compute_gradients(batch, mtl::StepContext{step, 0, {}});
    auto t2 = clock_type::now();
    optimizer->step();
    auto t3 = clock_type::now();
    if (step < a.warmup) continue;
    wait += std::chrono::duration<double>(t1 - t0).count();
    grads += std::chrono::duration<double>(t2 - t1).count();
    optim += std::chrono::duration<double>(t3 - t2).count();
    losses.push_back(r.total_loss);
    samples += batch.size;
  }
  const double wall = seconds_since(timed_start);
  const double self_cpu = self_cpu_seconds() - self0;
  const double faults = minor_page_faults() - faults0;
  const double background = (system_busy_seconds() - busy0 - self_cpu) / wall;

  // Loss trend over the timed steps: means of the first and last fifth (single steps are noisy).
  const size_t k = std::max<size_t>(1, losses.size() / 5);
  double first = 0, last = 0;
  for (size_t i = 0; i < k; ++i) {
    first += losses[i] / double(k);
    last += losses[losses.size() - k + i] / double(k);
  }
  json j;
  j["framework"] = "mtl";
  j["model"] = model;
  j["workers"] = workers;
  j["intra_op_threads"] = intra;
  j["threads"] = workers * intra;
  j["batch_size"] = ex.trainer.batch_size;
  j["train_size"] = data->size();
  j["warmup"] = a.warmup;
  j["steps"] = a.steps;
  j["seconds"] = wall;
  j["samples_per_s"] = double(samples) / wall;
  j["step_ms"] = 1e3 * wall / double(a.steps);
  j["wait_ms"] = 1e3 * wait / double(a.steps);
  j["gradients_ms"] = 1e3 * grads / double(a.steps);
  j["optimizer_ms"] = 1e3 * optim / double(a.steps);
  j["stall_share"] = wait / wall;
  j["peak_rss_mb"] = peak_rss_mb();
  j["page_faults_per_step"] = faults / double(a.steps);  // fresh memory the allocator got from the kernel
  j["cpu_cores_used"] = self_cpu / wall;                 // this process, including spinning OpenMP threads
  j["background_cores"] = std::max(0.0, background);     // other processes during the timed steps
  j["first_loss"] = losses.front();
  j["last_loss"] = losses.back();
  j["first_fifth_loss"] = first;
  j["last_fifth_loss"] = last;
  j["trains"] = last < first;
  return j;
}

// ------------------------------------------------------------------ driver

std::string self_exe() {
  std::array<char, 4096> buf{};
  ssize_t n = readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  if (n <= 0) throw std::runtime_error("cannot resolve /proc/self/exe");
  return std::string(buf.data(), static_cast<size_t>(n));
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// glibc malloc settings that keep freed memory in the process: by default every large tensor is a fresh
// mmap whose pages fault in again on every step (glibc's dynamic threshold adapts only partly), and page
// faults are expensive, in a VM most of all, and serialise threads of one process in the kernel. mtl sets
// the same values itself at startup (mtl/core/allocator.h); the PyTorch baseline gets them through the
// environment, so that both frameworks run on the same allocator settings.
constexpr const char* kTunedMalloc =
    "GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824";

std::string mtl_env(const BenchArgs& a) { return a.default_malloc ? "MTL_MALLOC_TUNING=0 " : ""; }
std::string pytorch_env(const BenchArgs& a) { return a.default_malloc ? "" : std::string(kTunedMalloc) + " "; }
std::string allocator_label(const BenchArgs& a) {
  return a.default_malloc ? "glibc malloc defaults for both (MTL_MALLOC_TUNING=0)"
                          : "mmap threshold 32 MiB, trim threshold 1 GiB for both (mtl: mallopt; PyTorch: " +
                                std::string(kTunedMalloc) + ")";
}

// Runs `cmd` (a child benchmark process) and returns the last JSON line it prints on stdout.
json run_child(const std::string& cmd) {
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) throw std::runtime_error("cannot start " + cmd);
  std::string out;
  std::array<char, 4096> buf{};
  while (size_t n = fread(buf.data(), 1, buf.size(), pipe)) out.append(buf.data(), n);
  int status = pclose(pipe);
  std::string last;
  for (const auto& line : split(out, '\n'))
    if (!line.empty() && line[0] == '{') last = line;
  if (status != 0 || last.empty())
    throw std::runtime_error("benchmark child failed (status " + std::to_string(status) + "): " + cmd);
  return json::parse(last);
}

std::string mtl_command(const BenchArgs& a, const std::string& model, int workers, int intra) {
  std::ostringstream cmd;
  cmd << mtl_env(a) << shell_quote(self_exe()) << " --run " << model << ":" << workers << ":" << intra << " --config "
      << shell_quote(a.config) << " --steps " << a.steps << " --warmup " << a.warmup << " --train-size " << a.train_size
      << " --mlp-hidden";
  for (int64_t h : a.mlp_hidden) cmd << " " << h;
  cmd << " --text-batch " << a.text_batch;
  for (const auto& s : a.sets) cmd << " --set " << shell_quote(s);
  return cmd.str();
}

std::string pytorch_command(const BenchArgs& a, const std::string& data_prefix, const std::string& model, int threads,
                            const std::string& memory_format) {
  std::ostringstream cmd;
  if (is_text_model(model)) {
    // The text baseline lives next to the image one.
    const size_t slash = a.pytorch.rfind('/');
    const std::string script = (slash == std::string::npos ? "" : a.pytorch.substr(0, slash + 1)) + "bench_text_pytorch.py";
    cmd << pytorch_env(a) << shell_quote(a.python) << " " << shell_quote(script) << " --one-threads " << threads
        << " --steps " << a.steps << " --warmup " << a.warmup << " --batch-size " << a.text_batch;
    return cmd.str();
  }
  cmd << pytorch_env(a) << shell_quote(a.python) << " " << shell_quote(a.pytorch) << " --data "
      << shell_quote(data_prefix) << " --model " << model << " --one-threads " << threads
      << " --memory-format " << memory_format << " --steps " << a.steps
      << " --warmup " << a.warmup << " --mlp-hidden ";
  for (size_t i = 0; i < a.mlp_hidden.size(); ++i) cmd << (i ? "," : "") << a.mlp_hidden[i];
  return cmd.str();
}

// The train split's IDX cache prefix, building the cache if it is missing (the baseline reads it).
std::string data_prefix(const BenchArgs& a) {
  mtl::Experiment ex = mtl::build_experiment(mtl::Config::load(a.config, data_overrides(a)));
  auto* source = dynamic_cast<const mtl::MultiFashionSource*>(ex.data.get());
  if (!source) throw std::runtime_error(a.config + " does not use MultiFashion data");
  std::string prefix = mtl::multi_fashion_cache_prefix(source->options(), mtl::Split::kTrain);
  std::ifstream probe(prefix + "-images-idx3-ubyte");
  if (!probe) mtl::load_multi_fashion(source->options(), mtl::Split::kTrain);
  return prefix;
}

// Waits (up to `max_wait` seconds) until other processes leave the cores idle: timings taken while
// something else runs are meaningless, worst of all for OpenMP, whose threads spin at every barrier.
void wait_until_quiet(double max_wait) {
  const double threshold = 0.15;  // cores busy with other work
  auto t0 = clock_type::now();
  double bg = background_cores(0.5);
  bool said = false;
  while (bg > threshold && seconds_since(t0) < max_wait) {
    if (!said) std::cerr << "(waiting for other processes: " << fixed(bg, 2) << " cores busy) " << std::flush;
    said = true;
    bg = background_cores(1.0);
  }
  if (bg > threshold) std::cerr << "(going ahead with " << fixed(bg, 2) << " cores busy) " << std::flush;
}

// "min-max" of a row's runs (samples/s, in thousands).
std::string run_range(const json& r) {
  std::vector<double> v = r.value("samples_per_s_runs", std::vector<double>{r["samples_per_s"].get<double>()});
  auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  return fixed(*lo / 1000, 1) + "-" + fixed(*hi / 1000, 1) + "k";
}

std::string setting_label(const json& r) {
  if (r["framework"] == "pytorch")
    return std::string(r.value("memory_format", "contiguous") == "channels_last" ? "pytorch NHWC" : "pytorch") +
           " set_num_threads(" + std::to_string(r["threads"].get<int>()) + ")";
  int w = r["workers"].get<int>(), i = r["intra_op_threads"].get<int>();
  return "mtl " + std::to_string(w) + (w == 1 ? " worker  x " : " workers x ") + std::to_string(i) + " intra";
}

int driver(const BenchArgs& a) {
  const int cores = static_cast<int>(a.max_threads > 0 ? a.max_threads : mtl::physical_cores());
  std::cerr << "mtl_bench: " << cores << " physical cores; " << a.warmup << " warmup + " << a.steps
            << " timed steps per configuration, " << a.repeats << " runs each; allocator: " << allocator_label(a)
            << "\n";
  for (const std::string& model : a.models) model_overrides(model, a);  // rejects an unknown name first
  std::cerr << "  sgemm 1024^3 ... " << std::flush;
  wait_until_quiet(a.max_wait);
  const double peak1 = sgemm_gflops(1);
  const double peak_all = sgemm_gflops(cores);
  std::cerr << fixed(peak1, 1) << " GFLOP/s at 1 thread, " << fixed(peak_all, 1) << " at " << cores << "\n";

  bool image_models = false;
  for (const std::string& model : a.models) image_models |= !is_text_model(model);
  std::string prefix = a.pytorch.empty() || !image_models ? "" : data_prefix(a);
  std::vector<json> rows;
  auto report = [](const json& r) {
    if (r.contains("tokens_per_s")) std::cerr << fixed(r["tokens_per_s"].get<double>(), 0) << " tokens/s, ";
    std::cerr << fixed(r["samples_per_s"].get<double>(), 0) << " samples/s, loss "
              << fixed(r["first_loss"].get<double>(), 3) << " -> " << fixed(r["last_loss"].get<double>(), 3)
              << ", background " << fixed(r["background_cores"].get<double>(), 2) << " cores\n";
  };
  // Every configuration runs `repeats` times, round-robin (so that a slow spell of the machine hits all of
  // them alike); each table row is the run with the median throughput, with every run's figure kept.
  struct Job {
    std::string label, command;
  };
  std::vector<Job> jobs;
  for (const std::string& model : a.models) {
    std::vector<std::pair<int, int>> settings;
    for (int w = 1; w <= cores; ++w) settings.push_back({w, 1});
    if (cores > 1) settings.push_back({1, cores});
    for (auto [w, i] : settings)
      jobs.push_back({"mtl " + model + " workers=" + std::to_string(w) + " intra=" + std::to_string(i),
                      mtl_command(a, model, w, i)});
    if (a.pytorch.empty()) continue;
    // The plain loop (NCHW, as written in every tutorial), and for convolutional models also the loop with
    // channels_last tensors, the memory format mtl's conv backbones use: the fair per-op comparison.
    std::vector<std::string> formats{"contiguous"};
    if (model == "lenet") formats.push_back("channels_last");
    for (const std::string& format : formats)
      for (int k = 1; k <= cores; ++k)
        jobs.push_back({"pytorch " + model + " " + format + " set_num_threads(" + std::to_string(k) + ")",
                        pytorch_command(a, prefix, model, k, format)});
  }
  std::vector<std::vector<json>> runs(jobs.size());
  for (int rep = 0; rep < a.repeats; ++rep)
    for (size_t j = 0; j < jobs.size(); ++j) {
      std::cerr << "  [" << rep + 1 << "/" << a.repeats << "] " << jobs[j].label << " ... " << std::flush;
      wait_until_quiet(a.max_wait);
      runs[j].push_back(run_child(jobs[j].command));
      report(runs[j].back());
    }
  for (auto& rs : runs) {
    std::vector<double> sps;
    for (const json& r : rs) sps.push_back(r["samples_per_s"].get<double>());
    std::sort(rs.begin(), rs.end(), [](const json& x, const json& y) {
      return x["samples_per_s"].get<double>() < y["samples_per_s"].get<double>();
    });
    json median = rs[rs.size() / 2];
    median["samples_per_s_runs"] = sps;
    rows.push_back(median);
  }

  // Derived columns: speed-up against the same framework's 1-thread row, GFLOP/s, share of peak.
  for (json& r : rows) {
    double base = 0;
    for (const json& o : rows)
      if (o["framework"] == r["framework"] && o["model"] == r["model"] && o["threads"] == 1 &&
          o.value("memory_format", "") == r.value("memory_format", ""))
        base = o["samples_per_s"].get<double>();
    const double sps = r["samples_per_s"].get<double>();
    const int threads = r["threads"].get<int>();
    r["speedup"] = base > 0 ? sps / base : 0.0;
    r["efficiency"] = base > 0 ? sps / base / threads : 0.0;
    r["gflops"] = sps * train_flops(r["model"].get<std::string>(), a) / 1e9;
    r["peak_share"] = r["gflops"].get<double>() / (peak1 * threads);
  }

  std::ostringstream out;
  if (image_models)
    out << "\nmtl training benchmark: MultiFashion 36x36, batch " << rows.front()["batch_size"] << ", SGD lr 0.01 "
        << "momentum 0.9, " << a.warmup << " warmup + " << a.steps << " timed steps; " << cores << " physical cores; "
      << "median of " << a.repeats << " runs per row (range in 'runs')\n";
  if (!image_models || a.models.size() > 1)
    out << "\nmtl text training benchmark: Transformer encoder (pre-LN, dim " << kTextDim << ", " << kTextLayers
        << " layers, " << kTextHeads << " heads, ffn " << kTextFfn << ", vocab " << kTextVocab
        << ", dropout 0.1) + classification head, batch " << a.text_batch << " sequences of " << kTextMinLength << "-"
        << kTextMaxLength << " tokens (mean " << fixed(text_mean_length(a.text_batch), 1)
        << "), Adam lr 1e-3, " << a.warmup << " warmup + " << a.steps << " timed steps; " << cores
        << " physical cores; median of " << a.repeats << " runs per row\n";
  out << "allocator: " << allocator_label(a) << "\n";
  out << "sgemm peak (at::mm 1024x1024 float): " << fixed(peak1, 1) << " GFLOP/s at 1 thread, " << fixed(peak_all, 1)
      << " GFLOP/s at " << cores << " threads\n";
  for (const std::string& model : a.models)
    out << "training FLOPs per example (3 x forward, 2 FLOP/MAC): " << model_label(model, a) << " "
        << fixed(train_flops(model, a) / 1e6, 2) << " MFLOP\n";
  out << "\n";
  out << std::left << std::setw(14) << "model" << std::setw(30) << "setting" << std::right << std::setw(10)
      << "samples/s" << std::setw(14) << "runs" << std::setw(9) << "speedup" << std::setw(7) << "eff." << std::setw(9) << "GFLOP/s"
      << std::setw(12) << "%peak*thr" << std::setw(9) << "stall%" << std::setw(9) << "RSS MB" << std::setw(18)
      << "loss first->last" << std::setw(9) << "bg cores"
      << "\n";
  for (const json& r : rows) {
    out << std::left << std::setw(14) << model_label(r["model"].get<std::string>(), a) << std::setw(30)
        << setting_label(r) << std::right << std::setw(10) << fixed(r["samples_per_s"].get<double>(), 0)
        << std::setw(14) << run_range(r) << std::setw(9)
        << fixed(r["speedup"].get<double>(), 2) << std::setw(7) << fixed(r["efficiency"].get<double>(), 2)
        << std::setw(9) << fixed(r["gflops"].get<double>(), 1) << std::setw(12)
        << fixed(100 * r["peak_share"].get<double>(), 1) << std::setw(9)
        << fixed(100 * r["stall_share"].get<double>(), 1) << std::setw(9) << fixed(r["peak_rss_mb"].get<double>(), 0)
        << std::setw(18)
        << (fixed(r["first_fifth_loss"].get<double>(), 3) + "->" + fixed(r["last_fifth_loss"].get<double>(), 3))
        << std::setw(9) << fixed(r["background_cores"].get<double>(), 2) << "\n";
  }

  // Where an mtl step's time goes.
  out << "stall%: mtl: share of the step spent waiting in Loader::next(); pytorch: share spent gathering and "
         "normalising the batch inline\n";
  out << "loss first->last: mean total loss of the first and last fifth of the timed steps; bg cores: cores kept "
         "busy by other processes meanwhile (should be ~0)\n";
  out << "\nwhere the time goes: step ms (mtl: loader wait + gradients + optimizer step), CPU cores the process "
         "kept busy, page faults per step\n";
  for (const json& r : rows) {
    out << "  " << std::left << std::setw(14) << model_label(r["model"].get<std::string>(), a) << std::setw(30)
        << setting_label(r) << std::right << std::setw(6) << fixed(r["step_ms"].get<double>(), 1) << " ms";
    if (r["framework"] == "mtl")
      out << " = " << fixed(r["wait_ms"].get<double>(), 2) << " + " << fixed(r["gradients_ms"].get<double>(), 1)
          << " + " << fixed(r["optimizer_ms"].get<double>(), 2);
    out << "; " << fixed(r["cpu_cores_used"].get<double>(), 2) << " cores; "
        << fixed(r["page_faults_per_step"].get<double>(), 0) << " faults\n";
  }

  json summary = json::object();
  out << "\n";
  for (const std::string& model : a.models) {
    const json* best[3] = {nullptr, nullptr, nullptr};  // mtl, plain pytorch, pytorch channels_last
    const json *one = nullptr, *two = nullptr;
    for (const json& r : rows) {
      if (r["model"] != model) continue;
      int f = r["framework"] == "mtl" ? 0 : r.value("memory_format", "contiguous") == "channels_last" ? 2 : 1;
      if (!best[f] || r["samples_per_s"].get<double>() > (*best[f])["samples_per_s"].get<double>()) best[f] = &r;
      if (f == 0 && r["intra_op_threads"] == 1 && r["workers"] == 1) one = &r;
      if (f == 0 && r["intra_op_threads"] == 1 && r["workers"] == 2) two = &r;
    }
    json s;
    const std::string name = model_label(model, a);
    if (best[0]) {
      out << name << ": mtl best " << fixed((*best[0])["samples_per_s"].get<double>(), 0) << " samples/s ("
          << setting_label(*best[0]) << ")";
      s["mtl_best_samples_per_s"] = (*best[0])["samples_per_s"];
      s["mtl_best_setting"] = setting_label(*best[0]);
      if (best[1]) {
        const double ratio = (*best[0])["samples_per_s"].get<double>() / (*best[1])["samples_per_s"].get<double>();
        out << " / PyTorch best " << fixed((*best[1])["samples_per_s"].get<double>(), 0) << " ("
            << setting_label(*best[1]) << ") = " << fixed(ratio, 2);
        s["pytorch_best_samples_per_s"] = (*best[1])["samples_per_s"];
        s["pytorch_best_setting"] = setting_label(*best[1]);
        s["mtl_over_pytorch"] = ratio;
      }
      if (best[2]) {
        const double ratio = (*best[0])["samples_per_s"].get<double>() / (*best[2])["samples_per_s"].get<double>();
        out << " / PyTorch NHWC best " << fixed((*best[2])["samples_per_s"].get<double>(), 0) << " ("
            << setting_label(*best[2]) << ") = " << fixed(ratio, 2);
        s["pytorch_nhwc_best_samples_per_s"] = (*best[2])["samples_per_s"];
        s["mtl_over_pytorch_nhwc"] = ratio;
      }
      out << "\n";
    }
    if (one && two) {
      const double sp = (*two)["samples_per_s"].get<double>() / (*one)["samples_per_s"].get<double>();
      out << name << ": mtl 2 workers vs 1 worker: speed-up " << fixed(sp, 2) << " (efficiency " << fixed(sp / 2, 2)
          << ")\n";
      s["mtl_2_vs_1_worker_speedup"] = sp;
    }
    summary[model] = s;
  }
  // Text models: real tokens per second, against PyTorch at the same total thread count and at its best.
  for (const std::string& model : a.models) {
    if (!is_text_model(model)) continue;
    const json* best_pt = nullptr;
    for (const json& r : rows)
      if (r["model"] == model && r["framework"] == "pytorch" &&
          (!best_pt || r["tokens_per_s"].get<double>() > (*best_pt)["tokens_per_s"].get<double>()))
        best_pt = &r;
    out << "\n" << model_label(model, a) << " training throughput (real tokens/s, padding excluded)\n";
    out << std::left << std::setw(30) << "setting" << std::right << std::setw(12) << "tokens/s" << std::setw(12)
        << "samples/s" << std::setw(18) << "vs PyTorch same" << std::setw(18) << "vs PyTorch best" << "\n";
    for (const json& r : rows) {
      if (r["model"] != model) continue;
      const double tps = r["tokens_per_s"].get<double>();
      std::string same = "-", best = "-";
      if (r["framework"] == "mtl") {
        for (const json& o : rows)
          if (o["model"] == model && o["framework"] == "pytorch" && o["threads"] == r["threads"])
            same = fixed(tps / o["tokens_per_s"].get<double>(), 2);
        if (best_pt) best = fixed(tps / (*best_pt)["tokens_per_s"].get<double>(), 2);
      }
      out << std::left << std::setw(30) << setting_label(r) << std::right << std::setw(12) << fixed(tps, 0)
          << std::setw(12) << fixed(r["samples_per_s"].get<double>(), 1) << std::setw(18) << same << std::setw(18)
          << best << "\n";
    }
    out << "vs PyTorch same: mtl tokens/s / PyTorch tokens/s at the same total thread count (workers x intra = "
           "set_num_threads); vs PyTorch best: against PyTorch's fastest row\n";
    if (summary.contains(model) && best_pt) summary[model]["pytorch_best_tokens_per_s"] = (*best_pt)["tokens_per_s"];
  }
  for (const json& r : rows)
    if (!r["trains"].get<bool>())
      out << "WARNING: " << model_label(r["model"].get<std::string>(), a) << " " << setting_label(r)
          << ": the loss did not decrease over the timed steps\n";
  for (const json& r : rows)
    if (r["background_cores"].get<double>() > 0.25)
      out << "WARNING: " << model_label(r["model"].get<std::string>(), a) << " " << setting_label(r) << ": other "
          << "processes kept " << fixed(r["background_cores"].get<double>(), 2)
          << " cores busy; its timing is unreliable\n";
  std::cout << out.str() << std::flush;

  if (!a.json_path.empty()) {
    json j;
    j["cores"] = cores;
    j["sgemm_gflops_1_thread"] = peak1;
    j["sgemm_gflops_all_threads"] = peak_all;
    j["train_flops_per_example"] = json::object();
    for (const std::string& model : a.models) j["train_flops_per_example"][model] = train_flops(model, a);
    j["warmup"] = a.warmup;
    j["steps"] = a.steps;
    j["allocator"] = allocator_label(a);
    j["rows"] = rows;
    j["summary"] = summary;
    std::ofstream f(a.json_path);
    f << j.dump(2) << "\n";
    if (!f) throw std::runtime_error("cannot write " + a.json_path);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  BenchArgs a;
  CLI::App app{"mtl_bench: training throughput of mtl's parallel engine on MultiFashion (see tools/bench.sh)"};
  app.add_option("--config", a.config, "base config (MultiLeNet on MultiFashion)");
  app.add_option("--steps", a.steps, "timed steps per configuration")->check(CLI::PositiveNumber);
  app.add_option("--warmup", a.warmup, "untimed steps before timing")->check(CLI::NonNegativeNumber);
  app.add_option("--train-size", a.train_size, "data.train_size override (0 = the config's)");
  app.add_option("--max-threads", a.max_threads, "largest thread count (0 = physical cores)");
  app.add_option("--models", a.models, "models to run: lenet, mlp, transformer (text: tokens/s)")->delimiter(',');
  app.add_option("--mlp-hidden", a.mlp_hidden, "hidden widths of the wide MLP");
  app.add_option("--text-batch", a.text_batch, "text mode (transformer): sequences per batch")->check(CLI::PositiveNumber);
  app.add_option("--set", a.sets, "config override for every mtl run, e.g. --set engine.balance=dynamic")
      ->type_name("KEY=VALUE");
  app.add_option("--pytorch", a.pytorch, "the PyTorch baseline script (tools/bench_pytorch.py); empty = none");
  app.add_option("--python", a.python, "Python interpreter with torch for the baseline");
  app.add_flag("--default-malloc", a.default_malloc,
               "glibc malloc defaults for every configuration (default: mtl's mallopt tuning, and " +
                   std::string(kTunedMalloc) + " for PyTorch)");
  app.add_option("--repeats", a.repeats, "runs per configuration, round-robin; the table shows the median")
      ->check(CLI::PositiveNumber);
  app.add_option("--max-wait", a.max_wait, "seconds to wait for idle cores before each configuration");
  app.add_option("--json", a.json_path, "also write the results as JSON to this file");
  app.add_flag("--print-data-prefix", a.print_data_prefix,
               "build or load the MultiFashion train split and print its IDX cache prefix");
  app.add_option("--run", a.run, "(internal) run one configuration model:workers:intra, print one JSON line");
  CLI11_PARSE(app, argc, argv);
  try {
    if (a.print_data_prefix) {
      std::cout << data_prefix(a) << "\n";
      return 0;
    }
    if (!a.run.empty()) {
      std::cout << run_one(a).dump() << "\n";
      return 0;
    }
    return driver(a);
  } catch (const mtl::Error& e) {
    std::cerr << "mtl_bench: error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "mtl_bench: error: " << e.what() << "\n";
    return 1;
  }
}
