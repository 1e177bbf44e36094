#include "mtl/meta/episodes.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "mtl/core/error.h"
#include "mtl/data/dataset.h"

namespace mtl {

namespace {

// A generator that depends on (seed, step, index) only; draws are taken with rng() % n (every value below
// 2^64 is reachable, the bias at these n is below 1e-12).
std::mt19937_64 episode_rng(uint64_t seed, int64_t step, int64_t index) {
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32), static_cast<uint32_t>(step),
                    static_cast<uint32_t>(static_cast<uint64_t>(step) >> 32), static_cast<uint32_t>(index),
                    static_cast<uint32_t>(static_cast<uint64_t>(index) >> 32), 0x6d65u /* "me" */};
  return std::mt19937_64(seq);
}

uint64_t below(std::mt19937_64& rng, uint64_t n) { return rng() % n; }

// The first `k` entries of a random permutation of `v` (partial Fisher-Yates on a copy).
std::vector<int64_t> draw(std::vector<int64_t> v, size_t k, std::mt19937_64& rng) {
  for (size_t i = 0; i < k; ++i) std::swap(v[i], v[i + below(rng, v.size() - i)]);
  v.resize(k);
  return v;
}

std::string join(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s;
}

}  // namespace

std::vector<int64_t> resolve_classes(const std::vector<std::string>& keys, const LabelInfo& label,
                                     const std::string& where) {
  std::vector<int64_t> out;
  for (const std::string& key : keys) {
    // A class name first (classes named "1", "2", ... are meant by name), then digits as an index.
    auto it = std::find(label.classes.begin(), label.classes.end(), key);
    const bool index = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (it == label.classes.end() && index) {
      out.push_back(std::stoll(key.substr(0, 18)));
      continue;
    }
    if (it == label.classes.end())
      throw Error(where, "'" + key + "' is not a class of label '" + label.name + "'" +
                             (label.classes.empty() ? std::string(" (its classes have no names: give indices)")
                                                    : did_you_mean(key, label.classes)));
    out.push_back(static_cast<int64_t>(it - label.classes.begin()));
  }
  return out;
}

EpisodeSampler::EpisodeSampler(std::shared_ptr<Dataset> data, const std::vector<TaskSpec>& tasks,
                               EpisodeOptions options, const std::string& where)
    : data_(std::move(data)), tasks_(tasks), options_(std::move(options)) {
  const int64_t n = data_->size(), per_class = options_.support + options_.query;
  // Each task's labels, read in chunks (the inputs are collated too, then dropped).
  std::vector<std::map<int64_t, std::vector<int64_t>>> by_class(tasks_.size());
  std::vector<std::vector<int64_t>> with_label(tasks_.size());
  const int64_t chunk = 4096;
  for (int64_t begin = 0; begin < n; begin += chunk) {
    std::vector<int64_t> idx;
    for (int64_t i = begin; i < std::min(n, begin + chunk); ++i) idx.push_back(i);
    Batch b = data_->batch(idx);
    for (size_t t = 0; t < tasks_.size(); ++t) {
      auto it = b.targets.find(tasks_[t].label.name);
      if (it == b.targets.end()) continue;
      if (options_.ways == 0) {
        with_label[t].insert(with_label[t].end(), idx.begin(), idx.end());
        continue;
      }
      at::Tensor y = it->second.to(at::kLong).contiguous();
      const int64_t* p = y.data_ptr<int64_t>();
      for (size_t i = 0; i < idx.size(); ++i) by_class[t][p[i]].push_back(idx[i]);
    }
  }
  for (size_t t = 0; t < tasks_.size(); ++t) {
    const std::string& name = tasks_[t].name;
    TaskPool pool;
    if (options_.ways == 0) {
      if (static_cast<int64_t>(with_label[t].size()) < per_class)
        throw Error(where, "task " + name + " has " + std::to_string(with_label[t].size()) +
                               " examples; an episode needs support + query = " + std::to_string(per_class));
      pool.all = with_label[t];
      pools_.push_back(std::move(pool));
      continue;
    }
    if (tasks_[t].label.kind != LabelKind::kClass)
      throw Error(where, "ways: task " + name + "'s label '" + tasks_[t].label.name + "' holds " +
                             to_string(tasks_[t].label.kind) + ", not classes; use ways: 0 for such tasks");
    std::vector<int64_t> wanted = options_.classes;
    if (wanted.empty())
      for (const auto& kv : by_class[t]) wanted.push_back(kv.first);
    std::vector<int64_t> small;
    for (int64_t c : wanted) {
      auto it = by_class[t].find(c);
      if (it == by_class[t].end())
        throw Error(where, "classes: task " + name + " has no example of class " + std::to_string(c));
      if (static_cast<int64_t>(it->second.size()) < per_class) {
        small.push_back(c);
        continue;
      }
      pool.classes.push_back(c);
      pool.examples.push_back(it->second);
    }
    if (static_cast<int64_t>(pool.classes.size()) < options_.ways)
      throw Error(where, "ways: task " + name + " has " + std::to_string(pool.classes.size()) + " classes with " +
                             "support + query = " + std::to_string(per_class) + " examples each, " +
                             std::to_string(options_.ways) + " needed" +
                             (small.empty() ? "" : " (classes with fewer: " + join(small) + ")"));
    pools_.push_back(std::move(pool));
  }
}

Batch EpisodeSampler::collate(const std::vector<int64_t>& indices, size_t task, const std::vector<int64_t>& labels) const {
  Batch b = data_->batch(indices);
  const std::string& label = tasks_[task].label.name;
  at::Tensor y = b.targets.at(label);
  b.targets.clear();
  b.targets[label] = labels.empty() ? y : at::tensor(labels, at::kLong);
  return b;
}

Episode EpisodeSampler::sample(uint64_t seed, int64_t step, int64_t index) const {
  std::mt19937_64 rng = episode_rng(seed, step, index);
  return sample_task(static_cast<size_t>(below(rng, tasks_.size())), seed, step, index);
}

Episode EpisodeSampler::sample_task(size_t task, uint64_t seed, int64_t step, int64_t index) const {
  std::mt19937_64 rng = episode_rng(seed ^ 0x9e3779b97f4a7c15ull, step, index);
  const TaskPool& pool = pools_[task];
  Episode e;
  e.task = task;
  if (options_.ways == 0) {
    std::vector<int64_t> picked = draw(pool.all, static_cast<size_t>(options_.support + options_.query), rng);
    e.support = collate({picked.begin(), picked.begin() + options_.support}, task, {});
    e.query = collate({picked.begin() + options_.support, picked.end()}, task, {});
    return e;
  }
  std::vector<int64_t> order(pool.classes.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  order = draw(order, static_cast<size_t>(options_.ways), rng);
  std::vector<int64_t> s_idx, s_lab, q_idx, q_lab;
  for (int64_t j = 0; j < options_.ways; ++j) {
    const size_t c = static_cast<size_t>(order[static_cast<size_t>(j)]);
    e.classes.push_back(pool.classes[c]);
    std::vector<int64_t> picked = draw(pool.examples[c], static_cast<size_t>(options_.support + options_.query), rng);
    for (int64_t i = 0; i < options_.support; ++i) s_idx.push_back(picked[static_cast<size_t>(i)]), s_lab.push_back(j);
    for (int64_t i = options_.support; i < static_cast<int64_t>(picked.size()); ++i)
      q_idx.push_back(picked[static_cast<size_t>(i)]), q_lab.push_back(j);
  }
  e.support = collate(s_idx, task, s_lab);
  e.query = collate(q_idx, task, q_lab);
  return e;
}

MeanInterval mean_interval(const std::vector<double>& values) {
  MeanInterval m;
  m.n = static_cast<int64_t>(values.size());
  if (values.empty()) return m;
  for (double v : values) m.mean += v / double(values.size());
  if (values.size() < 2) return m;
  double ss = 0.0;
  for (double v : values) ss += (v - m.mean) * (v - m.mean);
  m.half_width = 1.96 * std::sqrt(ss / double(values.size() - 1)) / std::sqrt(double(values.size()));
  return m;
}

}  // namespace mtl
