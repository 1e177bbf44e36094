#include "mtl/core/random.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/ATen.h>

namespace mtl {

namespace {
thread_local at::Generator t_generator;

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
}  // namespace

ThreadGeneratorScope::ThreadGeneratorScope(at::Generator gen) : previous_(t_generator) { t_generator = std::move(gen); }
ThreadGeneratorScope::~ThreadGeneratorScope() { t_generator = previous_; }

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
