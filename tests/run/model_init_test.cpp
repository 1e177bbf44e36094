// `model.init`: a model built from a config starts from an earlier run's checkpoint or a safetensors file,
// with the heads asked for; bad settings fail at build time with file:line:col.
#include "mtl/run/model_init.h"

#include <torch/torch.h>

#include <filesystem>

#include "mtl/run/baselines.h"
#include "mtl/run/assembler.h"
#include "mtl/run/trainer.h"
#include "mtl/io/checkpoint.h"
#include "mtl/io/safetensors.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {

// A tiny CSV problem (4 features, 3 class labels) that trains in milliseconds.
struct Data {
  mtl_test::TempDir dir{"model_init"};
  Data() {
    std::string csv = "x1,x2,x3,x4,a,b,c\n";
    for (int i = 0; i < 32; ++i)
      csv += std::to_string(i % 5) + "," + std::to_string(i % 7) + "," + std::to_string(i % 3) + "," +
             std::to_string(i % 11) + "," + std::to_string(i % 3) + "," + std::to_string(i % 2) + "," +
             std::to_string((i / 2) % 2) + "\n";
    mtl_test::write_file(dir.file("train.csv"), csv);
    mtl_test::write_file(dir.file("test.csv"), csv);
  }

  // A config with the given tasks ("a, b") and `model:` extra lines (e.g. an init block), in a file name
  // that error messages will show.
  std::string yaml(const std::string& tasks, const std::string& model_extra = "", int64_t width = 8) const {
    std::string task_lines;
    for (const std::string t : {"a", "b", "c"})
      if (tasks.find(t) != std::string::npos) task_lines += "  " + t + ": {}\n";
    return "data:\n  type: csv\n  train: " + dir.file("train.csv") + "\n  test: " + dir.file("test.csv") +
           "\n  labels: {a: {}, b: {}, c: {}}\n  features: [x1, x2, x3, x4]\n"
           "model:\n  backbone: {type: mlp, hidden: [" + std::to_string(width) + "]}\n" + model_extra +
           "tasks:\n" + task_lines +
           "optimizer: {type: sgd, lr: 0.1}\n"
           "trainer: {max_steps: 3, batch_size: 8, threads: 1, seed: 1, eval_interval: 0, run_dir: " +
           dir.file("run") + "}\nbaselines: none\n";
  }
};

mtl::Run build(const std::string& yaml, const mtl::AssembleOptions& options = {}) {
  return mtl::assemble(mtl::Config::from_string(yaml, "init.yaml"), options);
}

mtl::NamedTensors state(mtl::MultiTaskModel& m) {
  mtl::NamedTensors out;
  for (const auto& kv : m->named_parameters()) out.emplace_back(kv.key(), kv.value().detach().clone());
  for (const auto& kv : m->named_buffers()) out.emplace_back(kv.key(), kv.value().detach().clone());
  return out;
}

at::Tensor find(const mtl::NamedTensors& ts, const std::string& name) {
  for (const auto& [n, t] : ts)
    if (n == name) return t;
  return {};
}

// Every tensor of `m` under `prefix` is bitwise equal to the one of that name in `expected`.
void expect_from(mtl::MultiTaskModel& m, const std::string& prefix, const mtl::NamedTensors& expected) {
  size_t n = 0;
  for (const auto& [name, t] : state(m)) {
    if (name.rfind(prefix, 0) != 0) continue;
    ++n;
    at::Tensor e = find(expected, name);
    ASSERT_TRUE(e.defined()) << name;
    EXPECT_TRUE(torch::equal(t, e)) << name << " is not the expected one";
  }
  EXPECT_GT(n, 0u) << "no tensors under " << prefix;
}

std::string init_block(const std::string& path, const std::string& more = "") {
  return "  init:\n    path: " + path + "\n" + more;
}

// "init.yaml:L:C (key)" for the line of `yaml` holding `needle`, column `col`.
std::string at_line(const std::string& yaml, const std::string& needle, int col, const std::string& key) {
  size_t pos = yaml.find(needle);
  int line = 1 + static_cast<int>(std::count(yaml.begin(), yaml.begin() + pos, '\n'));
  return "init.yaml:" + std::to_string(line) + ":" + std::to_string(col) + " (" + key + ")";
}

// One pretraining run shared by the tests (training is the slow part).
struct Pretrained : Data {
  mtl::NamedTensors trained;
  Pretrained() {
    mtl::Run ex = build(yaml("a, b"));
    mtl::train(ex, mtl::TrainRunOptions{"", false});
    trained = mtl::read_checkpoint_model_tensors(dir.file("run/checkpoint.pt"));
  }
};

}  // namespace

TEST(ModelInit, FromARunDirectoryWithEachHeadsSetting) {
  Pretrained p;
  const std::string run = p.dir.file("run");
  mtl::Run plain = build(p.yaml("a, b"));
  mtl::NamedTensors fresh = state(plain.model);
  EXPECT_EQ(plain.init_report, "");

  // heads: none (the default): the backbone only; the heads are exactly those of a fresh build.
  mtl::Run none = build(p.yaml("a, b", init_block(run)));
  expect_from(none.model, "backbone.", p.trained);
  expect_from(none.model, "heads.", fresh);
  EXPECT_NE(none.init_report.find("checkpoint.pt: loaded 2 tensors; 0 missing"), std::string::npos) << none.init_report;

  // heads: all, in a config with a new task c: a and b come from the run, c starts fresh.
  mtl::Run plain_abc = build(p.yaml("a, b, c"));
  mtl::Run all = build(p.yaml("a, b, c", init_block(run, "    heads: all\n")));
  expect_from(all.model, "backbone.", p.trained);
  expect_from(all.model, "heads.a.", p.trained);
  expect_from(all.model, "heads.b.", p.trained);
  expect_from(all.model, "heads.c.", state(plain_abc.model));

  // heads: [a]: a from the run, b fresh.
  mtl::Run listed = build(p.yaml("a, b", init_block(run + "/checkpoint.pt", "    heads: [a]\n")));
  expect_from(listed.model, "backbone.", p.trained);
  expect_from(listed.model, "heads.a.", p.trained);
  expect_from(listed.model, "heads.b.", fresh);

  // A listed head the run does not have: strict names it; not strict loads the rest.
  EXPECT_MTL_ERROR(build(p.yaml("a, c", init_block(run, "    heads: [a, c]\n"))), run + "/checkpoint.pt",
                   "missing (heads.c.", "strict: false");
  mtl::Run lenient = build(p.yaml("a, c", init_block(run, "    heads: [a, c]\n    strict: false\n")));
  expect_from(lenient.model, "heads.a.", p.trained);
  EXPECT_NE(lenient.init_report.find("2 missing"), std::string::npos) << lenient.init_report;

  // Another backbone width: every backbone tensor is mismatched, named with both shapes.
  EXPECT_MTL_ERROR(build(p.yaml("a, b", init_block(run), 6)), run + "/checkpoint.pt", "mismatched",
                   "backbone.layers.0.weight: file [8, 4] F32 vs model [6, 4] F32");

  // The resolved config keeps the init block and builds the same model again.
  std::string resolved = all.config.source.resolved_yaml();
  EXPECT_NE(resolved.find("init:"), std::string::npos) << resolved;
  mtl::Run again = mtl::assemble(mtl::Config::from_string(resolved, "resolved.yaml"));
  expect_from(again.model, "heads.a.", p.trained);

  // Eval, predict and resume (artifacts_dir) skip the import and the path check.
  fs::remove_all(run);
  mtl::Run later = build(p.yaml("a, b", init_block(run)), mtl::AssembleOptions{p.dir.path()});
  EXPECT_EQ(later.init_report, "");
}

TEST(ModelInit, FromSafetensorsWithANameMapping) {
  Pretrained p;
  // As a Python program might name them: model.encoder.* (in F64) and classifier_<task>.*.
  mtl::NamedTensors file;
  for (const auto& [name, t] : p.trained) {
    if (name.rfind("backbone.", 0) == 0) file.emplace_back("model.encoder." + name.substr(9), t.to(torch::kDouble));
    if (name.rfind("heads.a.", 0) == 0) file.emplace_back("model.classifier_a." + name.substr(8), t);
  }
  const std::string path = p.dir.file("pretrained.safetensors");
  mtl::write_safetensors(path, file);
  mtl::Run plain = build(p.yaml("a, b"));
  std::string mapping =
      "    heads: all\n    strip_prefix: model\n    rename:\n"
      "      - {from: '^encoder\\.', to: backbone.}\n"
      "      - {from: '^classifier_(\\w+)\\.', to: heads.$1.}\n";
  mtl::Run ex = build(p.yaml("a, b", init_block(path, mapping)));
  expect_from(ex.model, "backbone.", p.trained);  // F64 holds every F32 exactly
  expect_from(ex.model, "heads.a.", p.trained);
  expect_from(ex.model, "heads.b.", state(plain.model));
  EXPECT_NE(ex.init_report.find("0 unexpected, 0 mismatched, 2 converted"), std::string::npos) << ex.init_report;
  // The rename rules survive the resolved config.
  mtl::Run again = mtl::assemble(mtl::Config::from_string(ex.config.source.resolved_yaml(), "resolved.yaml"));
  expect_from(again.model, "heads.a.", p.trained);

  // A bare backbone file: add_prefix puts it under backbone.
  mtl::NamedTensors bare;
  for (const auto& [name, t] : p.trained)
    if (name.rfind("backbone.", 0) == 0) bare.emplace_back(name.substr(9), t);
  mtl::write_safetensors(p.dir.file("bare.safetensors"), bare);
  mtl::Run from_bare =
      build(p.yaml("a, b", init_block(p.dir.file("bare.safetensors"), "    add_prefix: backbone\n")));
  expect_from(from_bare.model, "backbone.", p.trained);
  expect_from(from_bare.model, "heads.", state(plain.model));
  // A file that keeps each weight as two row halves: a concat rule joins them (and a split rule in the
  // resolved config keeps working too).
  mtl::NamedTensors halves;
  for (const auto& [name, t] : bare) {
    if (t.dim() == 2 && t.size(0) % 2 == 0) {
      for (const auto& [half, part] : {std::pair{"top", t.chunk(2)[0]}, std::pair{"bottom", t.chunk(2)[1]}})
        halves.emplace_back(name + "." + half, part.contiguous());
    } else {
      halves.emplace_back(name, t);
    }
  }
  ASSERT_GT(halves.size(), bare.size());
  mtl::write_safetensors(p.dir.file("halves.safetensors"), halves);
  std::string joined = "    add_prefix: backbone\n    rename:\n"
                       "      - {concat: ['^(.*)\\.top$', '^(.*)\\.bottom$'], to: $1, dim: 0}\n";
  mtl::Run from_halves = build(p.yaml("a, b", init_block(p.dir.file("halves.safetensors"), joined)));
  expect_from(from_halves.model, "backbone.", p.trained);
  mtl::Run resolved_halves =
      mtl::assemble(mtl::Config::from_string(from_halves.config.source.resolved_yaml(), "resolved.yaml"));
  expect_from(resolved_halves.model, "backbone.", p.trained);
  mtl::write_safetensors(p.dir.file("fused.safetensors"), file);  // and back: split halves, join them again
  std::string round = mapping + "      - {split: '^backbone\\.(.*)weight$', to: [$1top, $1bottom]}\n"
                                "      - {concat: ['^(.*)top$', '^(.*)bottom$'], to: backbone.$1weight}\n";
  mtl::Run from_round = build(p.yaml("a, b", init_block(p.dir.file("fused.safetensors"), round)));
  expect_from(from_round.model, "backbone.", p.trained);
  // Without the mapping nothing matches, and the message shows both sides' names.
  EXPECT_MTL_ERROR(build(p.yaml("a, b", init_block(p.dir.file("bare.safetensors"), "    strict: false\n"))),
                   "bare.safetensors", "no tensor of the file matches", "layers.0.weight",
                   "the model expects 2: backbone.layers.0.weight");
}

TEST(ModelInit, FromATorchSaveCheckpointByKey) {
  const std::string python = "/usr/bin/python3";
  if (mtl_test::run_shell(python + " -c 'import torch, numpy'").code != 0)
    GTEST_SKIP() << python << " cannot import torch and numpy (install python3-torch)";
  Pretrained p;
  // torch.save({"model": OrderedDict(encoder.*, classifier_a.*), "epoch": 1}) by PyTorch itself.
  mtl::NamedTensors file;
  for (const auto& [name, t] : p.trained) {
    if (name.rfind("backbone.", 0) == 0) file.emplace_back("encoder." + name.substr(9), t);
    if (name.rfind("heads.a.", 0) == 0) file.emplace_back("classifier_a." + name.substr(8), t);
  }
  mtl::write_safetensors(p.dir.file("named.safetensors"), file);
  const std::string pth = p.dir.file("pretrained.pth");
  mtl_test::ShellRun r = mtl_test::run_shell(python + " " + mtl_test::source_path("tests/io/torch_pt_reference.py") +
                                             " wrap " + p.dir.file("named.safetensors") + " " + pth + " model");
  ASSERT_EQ(r.code, 0) << r.out;

  mtl::Run plain = build(p.yaml("a, b"));
  const std::string mapping =
      "    key: model\n    heads: all\n    rename:\n"
      "      - {from: '^encoder\\.', to: backbone.}\n"
      "      - {from: '^classifier_(\\w+)\\.', to: heads.$1.}\n";
  mtl::Run ex = build(p.yaml("a, b", init_block(pth, mapping)));  // format auto: a torch.save archive
  expect_from(ex.model, "backbone.", p.trained);
  expect_from(ex.model, "heads.a.", p.trained);
  expect_from(ex.model, "heads.b.", state(plain.model));
  EXPECT_NE(ex.init_report.find("pretrained.pth: loaded 4 tensors"), std::string::npos) << ex.init_report;

  // Without the key the error says which one to give; an mtl checkpoint is not read as a torch.save file.
  EXPECT_MTL_ERROR(build(p.yaml("a, b", init_block(pth))), pth, "checkpoint dict", "key: model");
  EXPECT_MTL_ERROR(build(p.yaml("a, b", init_block(p.dir.file("run"), "    key: model\n"))), "checkpoint.pt",
                   "model.init.key 'model'", "an mtl checkpoint");
  EXPECT_MTL_ERROR(build(p.yaml("a, b", init_block(p.dir.file("run/checkpoint.pt"), "    format: torch\n"))),
                   "checkpoint.pt", "TorchScript archive");
}

TEST(ModelInit, BadSettingsFailAtTheirKey) {
  Data d;
  std::string y = d.yaml("a, b", init_block("no/such/run"));
  EXPECT_MTL_ERROR(build(y), at_line(y, "path: no/such", 11, "model.init.path"),
                   "no such file or directory 'no/such/run'", "working directory");
  // A directory that is not a run.
  y = d.yaml("a, b", init_block(d.dir.path()));
  EXPECT_MTL_ERROR(build(y), "(model.init.path)", "has no checkpoint.pt");
  y = d.yaml("a, b", "  init: {heads: all}\n");
  EXPECT_MTL_ERROR(build(y), "(model.init.path)", "missing required key 'path'");

  mtl_test::write_file(d.dir.file("w.safetensors"), "");
  std::string w = d.dir.file("w.safetensors");
  y = d.yaml("a, b", init_block(w, "    heads: [a, nosuch]\n"));
  EXPECT_MTL_ERROR(build(y), at_line(y, "heads: [a, nosuch]", 12, "model.init.heads"), "no task 'nosuch'",
                   "tasks: a, b");
  EXPECT_MTL_ERROR(build(d.yaml("a, b", init_block(w, "    heads: a\n"))), "(model.init.heads)", "write [a]");
  EXPECT_MTL_ERROR(build(d.yaml("a, b", init_block(w, "    heads: {a: 1}\n"))), "(model.init.heads)",
                   "expected none, all or a list of task names");
  EXPECT_MTL_ERROR(build(d.yaml("a, b", init_block(w, "    rename: [{from: 'x(', to: y}]\n"))),
                   "(model.init.rename[0].from)", "not a valid regular expression");
  EXPECT_MTL_ERROR(build(d.yaml("a, b", init_block(w, "    rename: [{from: x}]\n"))), "(model.init.rename[0].to)",
                   "missing required key 'to'");
  EXPECT_MTL_ERROR(build(d.yaml("a, b", init_block(w, "    rename: [{to: y}]\n"))), "(model.init.rename[0])",
                   "expected one of {from: REGEX, to: NAME}");
  EXPECT_MTL_ERROR(build(d.yaml("a, b", init_block(w, "    rename: [{from: x, split: x, to: y}]\n"))),
                   "(model.init.rename[0])", "expected one of");
  EXPECT_MTL_ERROR(build(d.yaml("a, b", init_block(w, "    rename: [{split: x, to: [a]}]\n"))),
                   "(model.init.rename[0].to)", "at least two names");
  EXPECT_MTL_ERROR(build(d.yaml("a, b", init_block(w, "    rename: [{split: x, to: [a, b], sizes: [1]}]\n"))),
                   "(model.init.rename[0].sizes)", "one size per name in 'to' (2), got 1");
  EXPECT_MTL_ERROR(build(d.yaml("a, b", init_block(w, "    rename: [{split: x, to: [a, b], sizes: [2, 0]}]\n"))),
                   "(model.init.rename[0].sizes)", "positive sizes");
  EXPECT_MTL_ERROR(build(d.yaml("a, b", init_block(w, "    rename: [{concat: ['a', 'b('], to: c}]\n"))),
                   "(model.init.rename[0].concat)", "not a valid regular expression 'b('");
  EXPECT_MTL_ERROR(build(d.yaml("a, b", init_block(w, "    rename: [{concat: [a], to: c}]\n"))),
                   "(model.init.rename[0].concat)", "at least two regular expressions");
  EXPECT_MTL_ERROR(build(d.yaml("a, b", init_block(w, "    rename: [{concat: [a, b], to: c, dims: 1}]\n"))),
                   "(model.init.rename[0].dims)", "did you mean 'dim'");
  EXPECT_MTL_ERROR(build(d.yaml("a, b", init_block(w, "    format: safetensor\n"))), "(model.init.format)",
                   "did you mean 'safetensors'");
  EXPECT_MTL_ERROR(build(d.yaml("a, b", init_block(w, "    format: safetensors\n    key: model\n"))),
                   "(model.init.key)", "format safetensors has no such entries");
  EXPECT_MTL_ERROR(build(d.yaml("a, b", init_block(w, "    preset: torch_transformer\n"))), "(model.init.preset)",
                   "expected one of: none, torch_transformer_encoder");
  EXPECT_MTL_ERROR(build(d.yaml("a, b", init_block(w, "    stirct: false\n"))), "(model.init.stirct)",
                   "did you mean 'strict'");
  // A file that is not what its extension says: the reader's error names it.
  EXPECT_MTL_ERROR(build(d.yaml("a, b", init_block(w))), w);
  EXPECT_MTL_ERROR(build(d.yaml("a, b", init_block(w, "    format: checkpoint\n"))), w,
                   "not a readable mtl checkpoint");
}

// `mtl baselines` of a fine-tuning config: each single-task model keeps what model.init, freeze and
// optimizer.groups say about its own head and the trunk, and drops what they say about other tasks' heads.
TEST(ModelInit, SingleTaskBaselinesKeepTheirOwnHeadsSettings) {
  Pretrained p;
  std::string y = p.yaml("a, b, c", init_block(p.dir.file("run"), "    heads: [a, b]\n")) +
                  "freeze: {train_only: [heads.c], schedule: [{epoch: 2, params: [heads.a]}]}\n";
  y.replace(y.find("optimizer: {type: sgd, lr: 0.1}"), 31,
            "optimizer: {type: sgd, lr: 0.1, groups: [{name: new, params: [heads.c], lr: 0.5}]}");
  mtl::Run ex = build(y);
  for (const std::string task : {"a", "b", "c"}) {
    mtl::Run single = mtl::assemble(mtl::single_task_config(ex.config, task));
    ASSERT_EQ(single.tasks.size(), 1u);
    if (task != "c") expect_from(single.model, "heads." + task + ".", p.trained);  // its head, loaded
    for (const auto& kv : single.model->named_parameters())  // train_only [heads.c] -> its own head
      EXPECT_EQ(kv.value().requires_grad(), kv.key().rfind("heads.", 0) == 0) << task << ": " << kv.key();
    EXPECT_EQ(single.config.optimizer.groups.size(), task == "c" ? 1u : 0u) << task;
    EXPECT_EQ(single.config.freeze.schedule.at(0).second.params.size(), task == "a" ? 1u : 0u) << task;
  }
}
