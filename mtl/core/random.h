// Per-thread random streams. Worker threads must not share one generator (the order in which threads
// draw would decide the numbers), so the engine gives each worker, for each step, a generator seeded
// from (seed, step, shard); mtl's random ops (dropout) draw from the calling thread's generator and fall
// back to LibTorch's default CPU generator outside the engine.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace mtl {

/// The training step a forward pass belongs to (set by the engines around each shard's forward pass).
struct StepInfo {
  uint64_t seed = 0;   // the run's seed for random draws (EngineOptions::seed)
  int64_t step = 0;    // optimizer steps taken before this one
  int64_t epoch = 0;   // 0-based
};

/// While alive, mtl's random ops on this thread draw from `gen`; the second form is a shard's scope within a
/// training step: dropout draws from (seed, step, shard), step_generator() and current_step() see `step`.
class ThreadGeneratorScope {
 public:
  explicit ThreadGeneratorScope(at::Generator gen);
  ThreadGeneratorScope(const StepInfo& step, uint64_t shard);
  ~ThreadGeneratorScope();
  ThreadGeneratorScope(const ThreadGeneratorScope&) = delete;
  ThreadGeneratorScope& operator=(const ThreadGeneratorScope&) = delete;

 private:
  at::Generator previous_;
  const StepInfo* previous_step_;
  StepInfo step_;
};

/// The training step of the calling thread's forward pass, or null outside one (evaluation, plain calls).
const StepInfo* current_step();

/// A new generator for draws that every shard of the current step must agree on: seeded from (seed, step,
/// stream), so each call gives the same numbers within a step. Outside a step: thread_generator().
at::Generator step_generator(uint64_t stream);

/// The calling thread's generator (scoped, else the global default CPU generator).
at::Generator thread_generator();

/// A CPU generator seeded by mixing the given values (splitmix64).
at::Generator make_generator(uint64_t seed, uint64_t a, uint64_t b = 0);

/// Inverted dropout drawing from thread_generator(); identity when !training or p == 0.
at::Tensor dropout(const at::Tensor& x, double p, bool training);

}  // namespace mtl
