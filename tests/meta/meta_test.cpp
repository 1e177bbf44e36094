// Meta-learning (mtl/meta, mtl/run/meta_trainer.h). MAML's meta-gradient of a two-task model equals PyTorch's
// (tests/meta/maml_reference.py: autograd through the unrolled inner loop, create_graph=True) to 1e-6 in float64,
// for 1 and 3 inner steps, adapting the head or everything; on linear regression, MAML, first-order MAML and
// Reptile equal updates derived by hand; episodes are deterministic by seed, N-way with disjoint support and
// query; meta-training on Fashion-MNIST gives the same weights with 1 and 2 threads and resumes bitwise; `mtl
// adapt` reports a held-out accuracy; bad meta settings are one-line errors naming the key.
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "heads/head.h"
#include "mtl/data/tensor_dataset.h"
#include "mtl/io/torch_state_dict.h"
#include "mtl/meta/episodes.h"
#include "mtl/meta/meta_gradient.h"
#include "mtl/run/assembler.h"
#include "mtl/run/meta_trainer.h"
#include "test_util.h"

namespace {

constexpr const char* kPython = "/usr/bin/python3";

struct Model {
  mtl::MultiTaskModel model{nullptr};
  std::vector<mtl::TaskSpec> tasks;
};

// `backbone` over a dense input x [5]; one head per (task, head type, label kind, size).
Model build(const std::string& backbone, const std::vector<mtl::LabelInfo>& labels, const std::string& head_type) {
  mtl::DatasetSchema schema;
  schema.inputs.push_back({"x", {5}});
  schema.labels = labels;
  mtl::Config cfg = mtl::Config::from_string("backbone: " + backbone + "\nhead: {}\n", "m.yaml");
  mtl::ConfigNode bn = cfg.root().component("backbone");
  mtl::Backbone b = mtl::backbone_registry().get(bn.type())(bn, schema);
  Model m;
  std::vector<mtl::Head> heads;
  std::vector<std::string> names;
  const mtl::HeadEntry& entry = mtl::head_registry().get(head_type);
  for (const auto& label : labels) {
    heads.push_back(entry.make(cfg.root().child("head"), {b->output_dim(), label}));
    mtl::TaskSpec spec;
    spec.name = label.name;
    spec.head_type = head_type;
    spec.label = label;
    spec.loss_type = entry.default_loss;
    mtl::ConfigNode ln = cfg.root().component("loss", entry.default_loss);
    spec.loss = mtl::loss_registry().get(ln.type()).make(ln, label);
    m.tasks.push_back(spec);
    names.push_back(label.name);
  }
  m.model = mtl::MultiTaskModel(b, names, heads);
  m.model->to(at::kDouble);
  return m;
}

mtl::Episode episode(size_t task, const std::string& label, int64_t support, int64_t query, bool classes,
                     uint64_t seed) {
  torch::manual_seed(seed);
  mtl::Episode e;
  e.task = task;
  for (auto [batch, n] : {std::pair{&e.support, support}, std::pair{&e.query, query}}) {
    batch->size = n;
    batch->inputs["x"] = torch::randn({n, 5}, torch::kDouble);
    batch->targets[label] = classes ? torch::randint(0, 3, {n}, torch::kLong) : torch::randn({n}, torch::kDouble);
  }
  return e;
}

std::vector<at::Tensor> trainable(const mtl::MultiTaskModel& m) {
  std::vector<at::Tensor> out;
  for (const auto& p : m->parameters())
    if (p.requires_grad()) out.push_back(p);
  return out;
}

std::vector<at::Tensor> snapshot(const std::vector<at::Tensor>& ps) {
  std::vector<at::Tensor> out;
  for (const auto& p : ps) out.push_back(p.detach().clone());
  return out;
}

void restore(const std::vector<at::Tensor>& ps, const std::vector<at::Tensor>& values) {
  torch::NoGradGuard no_grad;
  for (size_t k = 0; k < ps.size(); ++k) ps[k].copy_(values[k]);
}

double max_abs(const at::Tensor& t) { return t.abs().max().item<double>(); }

}  // namespace

TEST(Meta, MamlMetaGradientEqualsPyTorchsUnrolledAutograd) {
  Model m = build("{type: mlp, hidden: [6]}",
                  {{"a", mtl::LabelKind::kClass, 3, {}}, {"b", mtl::LabelKind::kClass, 3, {}}}, "classification");
  const std::vector<at::Tensor> params = trainable(m.model);
  const std::vector<at::Tensor> initial = snapshot(params);
  const std::vector<mtl::Episode> episodes{episode(0, "a", 6, 9, true, 1), episode(1, "b", 6, 9, true, 2)};
  const double lr = 0.3;
  mtl_test::TempDir dir("maml_reference");
  mtl::NamedTensors in;
  for (const auto& kv : m.model->named_parameters()) in.push_back({"p/" + kv.key(), kv.value().detach()});
  for (size_t e = 0; e < episodes.size(); ++e) {
    const std::string k = "e" + std::to_string(e) + "/", label = e == 0 ? "a" : "b";
    in.push_back({k + "support_x", episodes[e].support.inputs.at("x")});
    in.push_back({k + "support_y", episodes[e].support.targets.at(label)});
    in.push_back({k + "query_x", episodes[e].query.inputs.at("x")});
    in.push_back({k + "query_y", episodes[e].query.targets.at(label)});
    in.push_back({k + "task", torch::tensor(static_cast<int64_t>(e))});
  }
  in.push_back({"inner_lr", torch::tensor(lr, torch::kDouble)});
  mtl::write_torch_state_dict(dir.file("in.pt"), in);
  mtl_test::ShellRun r = mtl_test::run_shell(std::string(kPython) + " " +
                                             mtl_test::source_path("tests/meta/maml_reference.py") + " " +
                                             dir.file("in.pt") + " " + dir.file("out.pt") + " 1 3");
  ASSERT_EQ(r.code, 0) << r.out;
  std::map<std::string, at::Tensor> ref;
  for (auto& [name, t] : mtl::read_torch_state_dict(dir.file("out.pt"))) ref[name] = t;
  const std::vector<std::string> names = [&] {
    std::vector<std::string> v;
    for (const auto& kv : m.model->named_parameters()) v.push_back(kv.key());
    return v;
  }();
  for (int64_t steps : {1, 3})
    for (const std::string adapt : {"heads", "all"})
      for (size_t e = 0; e < episodes.size(); ++e) {
        SCOPED_TRACE(std::to_string(steps) + " steps, adapt " + adapt + ", episode " + std::to_string(e));
        restore(params, initial);
        const std::vector<bool> adapted = mtl::adapted_parameters(*m.model, {adapt}, "test");
        mtl::EpisodeGradient g = mtl::episode_meta_gradient(
            *m.model, params, adapted, m.tasks[e], episodes[e], {mtl::MetaMethod::kMaml, steps, lr},
            {0, 0, static_cast<int64_t>(e)});
        double largest = 0.0;
        for (size_t k = 0; k < names.size(); ++k) {
          const at::Tensor& want = ref.at(std::to_string(steps) + "/" + adapt + "/e" + std::to_string(e) + "/" + names[k]);
          EXPECT_LE(max_abs(g.grads[k] - want), 1e-6) << names[k];
          largest = std::max(largest, max_abs(want));
        }
        EXPECT_GT(largest, 1e-3);  // the comparison is not of zeros
      }
}

// Linear regression, y ~ w.x + b with the mean squared error: the inner steps, FOMAML's and Reptile's updates and
// MAML's (the Hessian is constant: prod_i (I - lr H_s) times the query gradient) written out by hand.
TEST(Meta, FirstOrderMamlReptileAndMamlEqualHandDerivedUpdatesOnLinearRegression) {
  Model m = build("{type: mlp, hidden: []}", {{"y", mtl::LabelKind::kReal, 1, {}}}, "regression");
  const std::vector<at::Tensor> params = trainable(m.model);  // heads.y.out.weight [1, 5], heads.y.out.bias [1]
  ASSERT_EQ(params.size(), 2u);
  const std::vector<at::Tensor> initial = snapshot(params);
  const mtl::Episode ep = episode(0, "y", 7, 6, false, 3);
  const double lr = 0.05;
  const int64_t steps = 3;
  // theta = [w, b]; A = [X, 1]; L(theta) = |A theta - y|^2 / n; grad = 2/n A^T (A theta - y); H = 2/n A^T A.
  auto design = [](const mtl::Batch& b) { return torch::cat({b.inputs.at("x"), torch::ones({b.size, 1}, torch::kDouble)}, 1); };
  const at::Tensor As = design(ep.support), Aq = design(ep.query);
  const at::Tensor ys = ep.support.targets.at("y"), yq = ep.query.targets.at("y");
  auto grad = [](const at::Tensor& A, const at::Tensor& y, const at::Tensor& th) {
    return A.t().mm(A.mm(th) - y.unsqueeze(1)) * (2.0 / double(A.size(0)));
  };
  const at::Tensor theta0 = torch::cat({initial[0].t(), initial[1].unsqueeze(1)}, 0);  // [6, 1]
  at::Tensor theta = theta0.clone();
  for (int64_t i = 0; i < steps; ++i) theta = theta - lr * grad(As, ys, theta);
  const at::Tensor fomaml = grad(Aq, yq, theta), reptile = theta0 - theta;
  const at::Tensor H = As.t().mm(As) * (2.0 / double(As.size(0)));
  at::Tensor maml = fomaml.clone();
  for (int64_t i = 0; i < steps; ++i) maml = (torch::eye(6, torch::kDouble) - lr * H).mm(maml);
  const std::vector<bool> all{true, true};
  for (auto [method, want] : {std::pair{mtl::MetaMethod::kFomaml, fomaml}, std::pair{mtl::MetaMethod::kReptile, reptile},
                              std::pair{mtl::MetaMethod::kMaml, maml}}) {
    restore(params, initial);
    mtl::EpisodeGradient g = mtl::episode_meta_gradient(*m.model, params, all, m.tasks[0], ep, {method, steps, lr}, {});
    const at::Tensor got = torch::cat({g.grads[0].t(), g.grads[1].unsqueeze(1)}, 0);
    EXPECT_LE(max_abs(got - want), 1e-10) << static_cast<int>(method) << "\n" << got << "\n" << want;
    EXPECT_GT(max_abs(want), 1e-3);
  }
}

TEST(Meta, EpisodesAreDeterministicNWayAndDisjoint) {
  mtl::DatasetSchema schema;
  schema.inputs.push_back({"features", {2}});
  schema.labels.push_back({"c", mtl::LabelKind::kClass, 6, {}});
  const int64_t n = 120;
  at::Tensor x = torch::arange(2 * n, torch::kFloat).view({n, 2});  // example i has features (2i, 2i+1)
  at::Tensor y = torch::arange(n, torch::kLong) % 6;
  auto data = std::make_shared<mtl::TensorDataset>(schema, x, mtl::TensorMap{{"c", y}});
  mtl::TaskSpec task;
  task.name = "c";
  task.label = schema.labels[0];
  mtl::EpisodeOptions o;
  o.ways = 3;
  o.support = 2;
  o.query = 4;
  o.classes = {0, 1, 2, 3};
  mtl::EpisodeSampler sampler(data, {task}, o, "meta");
  auto ids = [](const mtl::Batch& b) {
    std::vector<int64_t> v;
    for (int64_t i = 0; i < b.size; ++i) v.push_back(static_cast<int64_t>(b.inputs.at("features")[i][0].item<float>()) / 2);
    return v;
  };
  std::set<std::vector<int64_t>> distinct;
  for (int64_t e = 0; e < 20; ++e) {
    const mtl::Episode a = sampler.sample(7, 3, e), b = sampler.sample(7, 3, e);
    EXPECT_EQ(ids(a.support), ids(b.support));  // same seed, step, index: same episode
    EXPECT_EQ(ids(a.query), ids(b.query));
    EXPECT_EQ(a.classes, b.classes);
    ASSERT_EQ(a.classes.size(), 3u);
    distinct.insert(ids(a.support));
    std::set<int64_t> seen;
    for (int64_t c : a.classes) {
      EXPECT_TRUE(c >= 0 && c <= 3) << c;  // only the listed classes
      EXPECT_TRUE(seen.insert(c).second);
    }
    const std::vector<int64_t> s = ids(a.support), q = ids(a.query);
    ASSERT_EQ(s.size(), 6u);
    ASSERT_EQ(q.size(), 12u);
    for (int64_t i : s) EXPECT_EQ(std::count(q.begin(), q.end(), i), 0);  // disjoint
    const at::Tensor ys = a.support.targets.at("c"), yq = a.query.targets.at("c");
    for (int64_t i = 0; i < 6; ++i) EXPECT_EQ(s[i] % 6, a.classes[ys[i].item<int64_t>()]);  // relabelled 0..N-1
    for (int64_t i = 0; i < 12; ++i) EXPECT_EQ(q[i] % 6, a.classes[yq[i].item<int64_t>()]);
  }
  EXPECT_GT(distinct.size(), 15u);  // and different episodes differ
  EXPECT_NE(ids(sampler.sample(8, 3, 0).support), ids(sampler.sample(7, 3, 0).support));

  o.classes = {0, 7};
  EXPECT_MTL_ERROR(mtl::EpisodeSampler(data, {task}, o, "meta"), "meta: classes: task c has no example of class 7");
  o.classes = {};
  o.support = 15;
  o.query = 6;  // 21 > the 20 examples of each class
  EXPECT_MTL_ERROR(mtl::EpisodeSampler(data, {task}, o, "meta"), "meta: ways: task c has 0 classes with support + query = 21");
}

namespace {

std::string fashion_meta_yaml(const mtl_test::TempDir& dir) {
  (void)dir;
  return "data: {type: fashion_mnist, train_size: 1200, test_size: 400}\n"
         "model: {backbone: {type: lenet, channels: [4, 8], out_features: 16}}\n"
         "tasks: {class: {label: class}}\n"
         "meta: {method: maml, ways: 3, support: 2, query: 3, classes: [0, 1, 2, 3, 4, 5], test_classes: [6, 7, 8, 9],\n"
         "       inner_steps: 2, inner_lr: 0.1, adapt: all, meta_batch_tasks: 3, steps: 4, test_episodes: 12}\n"
         "optimizer: {type: adam, lr: 0.001}\n"
         "trainer: {threads: 1, intra_op_threads: 1, seed: 3}\n";
}

}  // namespace

TEST(Meta, MetaTrainingIsTheSameForOneAndTwoThreadsAndResumesBitwise) {
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  mtl_test::TempDir dir("meta_train");
  const std::string yaml = fashion_meta_yaml(dir);
  auto run = [&](const std::string& tag, std::vector<std::string> sets, const std::string& resume = "") {
    sets.push_back("trainer.run_dir=" + dir.file(tag));
    mtl::Run r = mtl::assemble(mtl::Config::from_string(yaml, "meta.yaml", sets));
    mtl::MetaTrainSummary s = mtl::meta_train(r, {resume, false});
    return std::pair{std::move(r), s};
  };
  auto [one, s1] = run("one", {});
  EXPECT_EQ(s1.steps, 4);
  ASSERT_TRUE(s1.test_accuracy.has_value());
  EXPECT_EQ(s1.test_accuracy->n, 12);
  auto [two, s2] = run("two", {"trainer.threads=2"});
  auto [part, sp] = run("part", {"meta.steps=2"});
  EXPECT_EQ(sp.steps, 2);
  auto [rest, sr] = run("unused", {}, dir.file("part"));
  EXPECT_EQ(sr.steps, 4);
  auto p2 = two.model->named_parameters(), pr = rest.model->named_parameters();
  for (const auto& kv : one.model->named_parameters()) {
    EXPECT_TRUE(torch::equal(kv.value(), p2[kv.key()])) << "threads: " << kv.key();
    EXPECT_TRUE(torch::equal(kv.value(), pr[kv.key()])) << "resume: " << kv.key();
  }
  EXPECT_NE(mtl_test::read_file(dir.file("one/metrics.jsonl")).find("\"meta_eval\""), std::string::npos);
  EXPECT_EQ(mtl_test::read_file(dir.file("one/metrics.jsonl")), mtl_test::read_file(dir.file("part/metrics.jsonl")));
}

TEST(Meta, AdaptReportsHeldOutAccuracyAndBadSettingsAreOneLineErrors) {
  if (!mtl_test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  mtl_test::TempDir dir("meta_adapt");
  mtl_test::write_file(dir.file("meta.yaml"), fashion_meta_yaml(dir));
  const std::string mtl_exe = std::string(MTL_BINARY_DIR) + "/mtl ";
  mtl_test::ShellRun t = mtl_test::run_shell(mtl_exe + "train " + dir.file("meta.yaml") + " -q --set trainer.run_dir=" +
                                             dir.file("run") + " 2>&1");
  ASSERT_EQ(t.code, 0) << t.out;
  EXPECT_NE(t.out.find("held-out episodes (3-way 2-shot, 2 adaptation steps): accuracy"), std::string::npos) << t.out;
  mtl_test::ShellRun a = mtl_test::run_shell(mtl_exe + "adapt " + dir.file("meta.yaml") + " --checkpoint " +
                                             dir.file("run") + " --shots 1 --episodes 20 --json " + dir.file("a.json") + " 2>&1");
  ASSERT_EQ(a.code, 0) << a.out;
  EXPECT_NE(a.out.find("20 episodes, 3-way 1-shot"), std::string::npos) << a.out;
  EXPECT_NE(mtl_test::read_file(dir.file("a.json")).find("\"accuracy\""), std::string::npos);
  mtl_test::ShellRun s = mtl_test::run_shell(mtl_exe + "adapt " + dir.file("meta.yaml") + " --scratch --episodes 5 2>&1");
  EXPECT_EQ(s.code, 0) << s.out;

  auto error = [&](const std::string& args) {
    mtl_test::ShellRun r = mtl_test::run_shell(mtl_exe + args + " 2>&1");
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
    return r.out;
  };
  const std::string train = "train " + dir.file("meta.yaml") + " -q --set trainer.run_dir=" + dir.file("bad");
  EXPECT_NE(error(train + " --set meta.ways=11").find("(meta.classes): expected at least ways = 11 classes, got 6"),
            std::string::npos);
  const std::string ways = error(train + " --set meta.ways=11 --set meta.classes=[] --set meta.test_classes=[]");
  EXPECT_NE(ways.find("meta.ways"), std::string::npos) << ways;
  EXPECT_NE(ways.find("task class's label 'class' has 10 classes, fewer than ways = 11"), std::string::npos) << ways;
  EXPECT_NE(error(train + " --set meta.support=150").find("meta): ways: task class has 0 classes with support + query = 153"),
            std::string::npos);
  EXPECT_NE(error(train + " --set meta.test_classes=[6,7,12]").find("classes: task class has no example of class 12"),
            std::string::npos);
  EXPECT_NE(error(train + " --set meta.adapt=[nothing.*]").find("adapt selects no trainable parameter"), std::string::npos);
  EXPECT_NE(error(train + " --set meta.method=anil").find("meta.method"), std::string::npos);
  EXPECT_NE(error(train + " --set meta.ways=1").find("at least 2 classes"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir.file("bad")));  // nothing written
  EXPECT_NE(error("adapt " + dir.file("meta.yaml")).find("give --checkpoint RUN or --scratch"), std::string::npos);
}

TEST(Meta, ClassKeysAreIndicesOrTheLabelsClassNames) {
  mtl::LabelInfo label;
  label.name = "president";
  label.size = 3;
  label.classes = {"Abraham Lincoln", "Barack Obama", "George Washington"};
  EXPECT_EQ(mtl::resolve_classes({"George Washington", "0", "12"}, label, "meta.classes"),
            (std::vector<int64_t>{2, 0, 12}));  // indices are checked against the data later
  EXPECT_MTL_ERROR(mtl::resolve_classes({"Abraham Lincon"}, label, "meta.classes"),
                   "meta.classes: 'Abraham Lincon' is not a class of label 'president' (did you mean 'Abraham Lincoln'?)");
  label.classes.clear();
  EXPECT_MTL_ERROR(mtl::resolve_classes({"a"}, label, "w"), "its classes have no names: give indices");
  // Classes named by numbers (a CSV label with values 1, 2, 10: sorted as text) are meant by name; digits that
  // name no class are still an index.
  label.classes = {"1", "10", "2"};
  EXPECT_EQ(mtl::resolve_classes({"2", "10", "1", "7"}, label, "meta.classes"), (std::vector<int64_t>{2, 1, 0, 7}));
}

TEST(Meta, HeldOutPresidentsByNameAndMetaTrainingOnTheOthersOnStateOfTheUnion) {
  const std::string data = mtl_test::sotu_dir();
  mtl_test::TempDir dir("meta_sotu");
  std::set<std::string> presidents;
  {
    std::ifstream in(data + "/train.jsonl");
    std::string line;
    while (std::getline(in, line)) presidents.insert(nlohmann::json::parse(line)["president"].get<std::string>());
  }
  const std::vector<std::string> names(presidents.begin(), presidents.end());  // mtl's class order: sorted
  auto index = [&](const std::string& n) -> int64_t { return std::find(names.begin(), names.end(), n) - names.begin(); };
  const std::string yaml =
      "data: {type: text, train: " + data + "/train.jsonl, test: " + data + "/test.jsonl, text: text, max_length: 40,\n"
      "       labels: {president: {kind: class}}}\n"
      "tokenizer: {type: word, lowercase: true, min_freq: 5, max_size: 2000}\n"
      "model: {backbone: {type: embedding_bag, dim: 8, projection: 8}}\n"
      "tasks: {president: {label: president}}\n"
      "meta: {method: fomaml, ways: 3, support: 1, query: 2, test_classes: [Abraham Lincoln, Barack Obama, " +
      std::to_string(index("Woodrow Wilson")) + "],\n"
      "       inner_steps: 1, inner_lr: 0.5, adapt: all, meta_batch_tasks: 2, steps: 2, test_episodes: 4}\n"
      "optimizer: {type: adam, lr: 0.001}\n"
      "trainer: {threads: 1, seed: 0, run_dir: " + dir.file("run") + "}\n";
  mtl::Run run = mtl::assemble(mtl::Config::from_string(yaml, "sotu_meta.yaml"));
  const std::vector<int64_t> held{index("Abraham Lincoln"), index("Barack Obama"), index("Woodrow Wilson")};
  EXPECT_EQ(run.config.meta.test_classes, held);
  // `classes` left out: meta-training draws from every other president.
  std::vector<int64_t> rest;
  for (int64_t c = 0; c < static_cast<int64_t>(names.size()); ++c)
    if (std::find(held.begin(), held.end(), c) == held.end()) rest.push_back(c);
  EXPECT_EQ(run.config.meta.episodes.classes, rest);
  mtl::MetaTrainSummary s = mtl::meta_train(run, {"", false});
  ASSERT_TRUE(s.test_accuracy.has_value());
  EXPECT_EQ(s.test_accuracy->n, 4);

  const std::string typo = std::string(yaml).replace(yaml.find("Barack Obama"), 12, "Barak Obama");
  EXPECT_MTL_ERROR(mtl::assemble(mtl::Config::from_string(typo, "sotu_meta.yaml")), "sotu_meta.yaml:",
                   "(meta.test_classes): 'Barak Obama' is not a class of label 'president' (did you mean 'Barack Obama'?)");
}
