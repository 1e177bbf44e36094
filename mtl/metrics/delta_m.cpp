#include "mtl/metrics/delta_m.h"

#include <cmath>
#include <cstdio>
#include <map>

#include "mtl/core/error.h"

namespace mtl {

DeltaM delta_m(const std::vector<MetricScore>& multi_task, const std::vector<MetricScore>& baseline) {
  std::map<std::string, std::map<std::string, double>> base;
  for (const auto& b : baseline) base[b.task][b.metric] = b.value;

  DeltaM d;
  double total = 0.0;
  std::vector<std::string> order;                       // task order of `multi_task`
  std::map<std::string, std::pair<double, int64_t>> by_task;  // sum, count
  for (const auto& m : multi_task) {
    if (!by_task.count(m.task)) {
      order.push_back(m.task);
      by_task[m.task] = {0.0, 0};
    }
    auto t = base.find(m.task);
    if (t == base.end()) {
      if (d.missing.empty() || d.missing.back() != m.task) d.missing.push_back(m.task);
      continue;
    }
    auto k = t->second.find(m.metric);
    std::string name = m.task + "/" + m.metric;
    if (k == t->second.end()) {
      d.missing.push_back(name);
      continue;
    }
    if (k->second == 0.0 || !std::isfinite(k->second) || !std::isfinite(m.value)) {
      d.skipped.push_back(name);
      continue;
    }
    double sign = m.higher_is_better ? 1.0 : -1.0;
    double term = sign * (m.value - k->second) / std::fabs(k->second);
    total += term;
    ++d.terms;
    by_task[m.task].first += term;
    ++by_task[m.task].second;
  }
  d.valid = d.missing.empty() && d.terms > 0;
  if (d.terms > 0) d.percent = 100.0 * total / static_cast<double>(d.terms);
  for (const auto& t : order) {
    const auto& [sum, n] = by_task[t];
    if (n > 0) d.per_task.emplace_back(t, 100.0 * sum / static_cast<double>(n));
  }
  return d;
}

std::string format_percent(double percent) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%+.2f%%", percent);
  return buf;
}

std::string describe_delta_m(const DeltaM& d) {
  if (!d.missing.empty()) return "delta-m not computed: the baselines lack " + join(d.missing);
  if (d.terms == 0) return "delta-m not computed: no metric with a non-zero baseline";
  std::string s = "delta-m " + format_percent(d.percent) + " vs single-task baselines over " +
                  std::to_string(d.terms) + " metric" + (d.terms == 1 ? "" : "s") +
                  " (mean signed relative difference; positive = multi-task better)";
  if (!d.skipped.empty()) s += "; skipped (baseline 0): " + join(d.skipped);
  return s;
}

}  // namespace mtl
