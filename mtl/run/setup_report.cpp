#include "mtl/run/setup_report.h"

#include <cstdio>
#include <set>
#include <sstream>

#include "mtl/core/error.h"
#include "mtl/model/freezing.h"
#include "mtl/run/assembler.h"

namespace mtl {

namespace {

std::string frozen_line(MultiTaskModelImpl& model, const std::string& when, const FreezeSetting& s) {
  std::set<std::string> frozen = frozen_parameters(model, s);
  int64_t n = 0;
  std::vector<std::string> names;
  for (const auto& kv : model.named_parameters())
    if (frozen.count(kv.key())) {
      n += kv.value().numel();
      names.push_back(kv.key());
    }
  std::ostringstream out;
  out << "frozen " << when << ": " << n << " parameters";
  if (!names.empty()) out << " (" << names.size() << " tensors: " << join(names) << ")";
  out << "\n";
  return out.str();
}

std::string group_line(const ResolvedParamGroup& g, const SchedulerOptions& run_schedule) {
  int64_t n = 0, frozen = 0, decayed = 0;
  for (size_t k = 0; k < g.params.size(); ++k) {
    n += g.params[k].numel();
    if (!g.params[k].requires_grad()) frozen += g.params[k].numel();
    if (g.decayed[k]) decayed += g.params[k].numel();
  }
  char line[256];
  std::snprintf(line, sizeof line, "  %-20s lr %-10.4g weight_decay %-8.4g %9lld parameters (%lld frozen, %lld decayed)",
                g.name.c_str(), g.lr, g.weight_decay, static_cast<long long>(n), static_cast<long long>(frozen),
                static_cast<long long>(decayed));
  std::ostringstream out;
  out << line;
  const Regularisation& r = g.regularisation;
  if (r.l1 > 0) out << " l1 " << r.l1;
  if (r.l2 > 0) out << " l2 " << r.l2;
  if (r.clip_grad_value > 0) out << " clip_grad_value " << r.clip_grad_value;
  if (r.clip_grad_norm > 0) out << " clip_grad_norm " << r.clip_grad_norm;
  if (r.max_norm > 0) out << " max_norm " << r.max_norm;
  if (g.scheduler.type != run_schedule.type) out << " schedule " << g.scheduler.type;
  out << "\n";
  return out.str();
}

}  // namespace

std::string training_setup_report(MultiTaskModelImpl& model, const RunConfig& config, Weighting& weighting) {
  std::ostringstream out;
  auto blocks = backbone_blocks(model);
  out << "backbone blocks (freeze.blocks, layer_lr_decay count these):";
  for (size_t b = 0; b < blocks.size(); ++b) out << " " << b + 1 << "=" << join(blocks[b], "+");
  out << "\n";
  out << frozen_line(model, "from epoch 1", config.freeze.initial);
  for (const auto& [epoch, setting] : config.freeze.schedule)
    out << frozen_line(model, "from epoch " + std::to_string(epoch + 1), setting);
  ParamGroups groups = build_param_groups(config.optimizer, config.scheduler, model, weighting);
  out << "parameter groups (" << config.optimizer.type << ", schedule " << config.scheduler.type << "):\n";
  for (const auto& g : groups.groups()) out << group_line(g, config.scheduler);
  if (config.optimizer.regularisation.clip_grad_norm > 0)
    out << "  all gradients clipped to norm " << config.optimizer.regularisation.clip_grad_norm << "\n";
  return out.str();
}

}  // namespace mtl
