#include "mtl/data/image_transform.h"

#include "mtl/config/config_node.h"

namespace mtl {

const std::vector<double> kImageNetMean = {0.485, 0.456, 0.406};
const std::vector<double> kImageNetStd = {0.229, 0.224, 0.225};

namespace {

// normalize: true | false | imagenet | {mean, std}.
void read_normalize(const ConfigNode& node, InputTransform& t) {
  if (node.has("normalize")) {
    ConfigNode n = node.component("normalize");
    if (n.has("mean") || n.has("std")) {
      t.mean = n.require<std::vector<double>>("mean");
      t.std = n.require<std::vector<double>>("std");
      n.check(!t.mean.empty(), "mean", "expected one value, or one per channel");
      n.check(t.std.size() == t.mean.size(), "std",
              "expected as many values as mean (" + std::to_string(t.mean.size()) + "), got " +
                  std::to_string(t.std.size()));
      for (double s : t.std) n.check(s > 0, "std", "expected positive values, got " + std::to_string(s));
      return;
    }
  }
  const std::string v = node.choice("normalize", "true", {"true", "false", "imagenet"});
  if (v == "true") {
    t.mean = {0.5};
    t.std = {0.5};
  } else if (v == "imagenet") {
    t.mean = kImageNetMean;
    t.std = kImageNetStd;
  }
}

}  // namespace

InputTransform image_transform_from_config(const ConfigNode& node, int64_t stored_channels) {
  InputTransform t;
  read_normalize(node, t);
  // channels and resize enter the resolved config only when given, so that baselines recorded before these keys
  // existed still match a config that does not use them.
  t.channels = node.has("channels") ? node.get<int64_t>("channels", 0) : 0;
  node.check(t.channels >= 0, "channels", "expected a channel count (0: as stored), got " + std::to_string(t.channels));
  if (stored_channels > 0 && t.channels > 0)
    node.check(stored_channels == 1 || stored_channels == t.channels, "channels",
               "cannot repeat " + std::to_string(stored_channels) + "-channel images to " +
                   std::to_string(t.channels) + " channels (only 1-channel images repeat)");
  std::vector<int64_t> size{0};
  if (node.has("resize")) {
    try {
      size = {node.get<int64_t>("resize", 0)};
    } catch (const Error&) {
      try {
        size = node.get<std::vector<int64_t>>("resize", {});
      } catch (const Error&) {
        size.clear();
      }
      node.check(size.size() == 2, "resize", "expected a size or [height, width], e.g. 224 or [224, 224]");
    }
  }
  for (int64_t s : size) node.check(s >= 0, "resize", "expected sizes >= 1 (0: as stored), got " + std::to_string(s));
  if (size.size() == 1) size.push_back(size[0]);
  if (size[0] > 0 || size[1] > 0) {
    node.check(size[0] > 0 && size[1] > 0, "resize", "expected both sizes >= 1");
    t.size = size;
  }
  const int64_t channels = t.channels > 0 ? t.channels : stored_channels;
  const size_t k = t.mean.size();
  if (k > 1 && channels > 0)
    node.check(static_cast<int64_t>(k) == channels, "normalize",
               "expected one mean and std, or one per channel (" + std::to_string(channels) + "), got " +
                   std::to_string(k) + (k == 3 && channels == 1 ? " (set channels: 3 for 3-channel statistics)" : ""));
  return t;
}

}  // namespace mtl
