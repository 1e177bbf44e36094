#include "mtl/core/random.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/ATen.h>

namespace mtl {

namespace {
thread_local at::Generator t_generator;
thread_local const StepInfo* t_step = nullptr;

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
}  // namespace

ThreadGeneratorScope::ThreadGeneratorScope(at::Generator gen) : previous_(t_generator), previous_step_(t_step) {
  t_generator = std::move(gen);
}

ThreadGeneratorScope::ThreadGeneratorScope(const StepInfo& step, uint64_t shard)
    : previous_(t_generator), previous_step_(t_step), step_(step) {
  t_generator = make_generator(step.seed, static_cast<uint64_t>(step.step), shard);
  t_step = &step_;
}

ThreadGeneratorScope::~ThreadGeneratorScope() {
  t_generator = previous_;
  t_step = previous_step_;
}

const StepInfo* current_step() { return t_step; }

at::Generator step_generator(uint64_t stream) {
  if (t_step == nullptr) return thread_generator();
  // A stream tag apart from the shards' (a, b) = (step, shard) pairs.
  return make_generator(t_step->seed ^ 0x5354455053ull /* "STEPS" */, static_cast<uint64_t>(t_step->step), stream);
}

at::Generator thread_generator() {
  return t_generator.defined() ? t_generator : at::detail::getDefaultCPUGenerator();
}

at::Generator make_generator(uint64_t seed, uint64_t a, uint64_t b) {
  uint64_t s = splitmix64(seed ^ splitmix64(a ^ splitmix64(b)));
  return at::make_generator<at::CPUGeneratorImpl>(s);
}

at::Tensor dropout(const at::Tensor& x, double p, bool training) {
  if (!training || p <= 0) return x;
  at::Generator gen = thread_generator();
  // bernoulli_ locks the generator itself.
  at::Tensor keep = at::empty_like(x, x.options().requires_grad(false)).bernoulli_(1.0 - p, gen);
  return x * keep / (1.0 - p);
}

}  // namespace mtl
