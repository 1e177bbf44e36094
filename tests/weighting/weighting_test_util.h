// Helpers shared by the weighting-method tests.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <sstream>
#include <string>

#include "mtl/config/config_node.h"
#include "mtl/run/trainer.h"
#include "mtl/weighting/weighting.h"
#include "test_util.h"

namespace mtl_test {

/// Builds `weighting: <yaml>` for `tasks` tasks as the assembler (mtl::assemble) does (unknown options are errors).
inline std::unique_ptr<mtl::Weighting> make_weighting(const std::string& yaml, size_t tasks) {
  mtl::Config cfg = mtl::Config::from_string("weighting: " + yaml + "\n", "w.yaml");
  mtl::ConfigNode n = cfg.root().child("weighting");
  mtl::WeightingContext ctx;
  for (size_t t = 0; t < tasks; ++t) {
    ctx.task_names.push_back("t" + std::to_string(t));
    ctx.task_weights.push_back(1.0);
  }
  auto w = mtl::make_weighting(n, ctx);
  cfg.check_unused();
  return w;
}

/// A fresh `yaml` weighting that has loaded `w`'s checkpoint state (save -> bytes -> load).
inline std::unique_ptr<mtl::Weighting> restored_copy(const mtl::Weighting& w, const std::string& yaml, size_t tasks) {
  torch::serialize::OutputArchive out;
  w.save(out);
  std::ostringstream buf;
  out.save_to(buf);
  auto copy = make_weighting(yaml, tasks);
  torch::serialize::InputArchive in;
  std::istringstream ibuf(buf.str());
  in.load_from(ibuf);
  copy->load(in);
  return copy;
}

/// Trains MultiFashion (LeNet, two tasks) with `method` at 1 and 2 threads and checks that the weights and
/// the last task weights agree; returns the 1-thread experiment. The rate (0.02) keeps training out of the
/// regime where float rounding of shard sums grows chaotically (at lr 0.05 even equal weighting differs by
/// ~8e-4 after 18 steps from one run to the other; at 0.02 by ~2e-8), so a thread-dependent method shows.
inline mtl::Run expect_same_training_with_one_and_two_threads(const std::string& method, int epochs,
                                                                     int train_size, TempDir& dir) {
  auto run = [&](int threads) {
    std::string yaml = "data: {type: multi_fashion, train_size: " + std::to_string(train_size) +
                       ", test_size: 50, cache_dir: '" + dir.file("c") +
                       "'}\nmodel: {backbone: lenet}\ntasks: {left: {label: left}, right: {label: right}}\n" +
                       "weighting: {method: " + method + "}\noptimizer: {type: sgd, lr: 0.02, momentum: 0.9}\n" +
                       "trainer: {epochs: " + std::to_string(epochs) + ", batch_size: 50, threads: " +
                       std::to_string(threads) + ", intra_op_threads: 1, run_dir: '" +
                       dir.file(method + std::to_string(threads)) + "'}\n";
    mtl::Run ex = mtl::assemble(mtl::Config::from_string(yaml, "m.yaml"));
    mtl::train(ex, {"", false});
    return ex;
  };
  mtl::Run one = run(1), two = run(2);
  auto p1 = one.model->named_parameters(), p2 = two.model->named_parameters();
  for (auto& kv : p1) {
    double err = (kv.value() - p2[kv.key()]).abs().max().item<double>();
    EXPECT_LE(err, 1e-4 * std::max(1.0, kv.value().abs().max().item<double>())) << method << " " << kv.key();
  }
  EXPECT_EQ(one.weighting->last_weights().size(), 2u) << method;
  if (one.weighting->last_weights().size() == 2 && two.weighting->last_weights().size() == 2)
    for (size_t t = 0; t < 2; ++t)
      EXPECT_NEAR(one.weighting->last_weights()[t], two.weighting->last_weights()[t], 1e-3) << method;
  if (!one.weighting->parameters().empty())
    EXPECT_TRUE(torch::allclose(one.weighting->parameters()[0], two.weighting->parameters()[0], 1e-4, 1e-5))
        << method;
  return one;
}

}  // namespace mtl_test
