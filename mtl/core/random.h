// Per-thread random streams. Worker threads must not share one generator (the order in which threads
// draw would decide the numbers), so the engine gives each worker, for each step, a generator seeded
// from (seed, step, shard); mtl's random ops (dropout) draw from the calling thread's generator and fall
// back to LibTorch's default CPU generator outside the engine.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace mtl {

/// While alive, mtl's random ops on this thread draw from `gen`.
class ThreadGeneratorScope {
 public:
  explicit ThreadGeneratorScope(at::Generator gen);
  ~ThreadGeneratorScope();
  ThreadGeneratorScope(const ThreadGeneratorScope&) = delete;
  ThreadGeneratorScope& operator=(const ThreadGeneratorScope&) = delete;

 private:
  at::Generator previous_;
};

/// The calling thread's generator (scoped, else the global default CPU generator).
at::Generator thread_generator();

/// A CPU generator seeded by mixing the given values (splitmix64).
at::Generator make_generator(uint64_t seed, uint64_t a, uint64_t b = 0);

/// Inverted dropout drawing from thread_generator(); identity when !training or p == 0.
at::Tensor dropout(const at::Tensor& x, double p, bool training);

}  // namespace mtl
