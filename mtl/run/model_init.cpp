#include "mtl/run/model_init.h"

#include <algorithm>
#include <filesystem>
#include <iostream>

#include "mtl/io/checkpoint.h"
#include "mtl/io/safetensors.h"
#include "mtl/io/torch_state_dict.h"

namespace fs = std::filesystem;

namespace mtl {

namespace {

void check_regex(const ConfigNode& r, const std::string& key, const std::string& pattern) {
  std::string why = check_rename_regex(pattern);
  if (!why.empty()) r.fail(key, "not a valid regular expression '" + pattern + "': " + why);
}

// One entry of model.init.rename: {from, to}, {split, to: [names], dim, sizes} or {concat: [regexes], to, dim}.
RenameRule parse_rename_rule(const ConfigNode& r) {
  const int kinds = int(r.has("from")) + int(r.has("split")) + int(r.has("concat"));
  if (kinds != 1)
    r.fail("", "expected one of {from: REGEX, to: NAME}, {split: REGEX, to: [NAMES], dim: 0} or "
               "{concat: [REGEXES], to: NAME, dim: 0}");
  if (r.has("from")) {
    std::string from = r.require<std::string>("from");
    check_regex(r, "from", from);
    return RenameRule(from, r.require<std::string>("to"));
  }
  const auto dim = r.get<int64_t>("dim", 0);
  if (r.has("split")) {
    std::string from = r.require<std::string>("split");
    check_regex(r, "split", from);
    auto to = r.require<std::vector<std::string>>("to");
    r.check(to.size() >= 2, "to", "expected a list of at least two names, one per part");
    auto sizes = r.get<std::vector<int64_t>>("sizes", {});
    r.check(sizes.empty() || sizes.size() == to.size(), "sizes",
            "expected one size per name in 'to' (" + std::to_string(to.size()) + "), got " +
                std::to_string(sizes.size()));
    for (int64_t s : sizes) r.check(s > 0, "sizes", "expected positive sizes, got " + std::to_string(s));
    return RenameRule::split(from, to, dim, sizes);
  }
  auto parts = r.require<std::vector<std::string>>("concat");
  r.check(parts.size() >= 2, "concat", "expected a list of at least two regular expressions, one per part");
  for (const auto& p : parts) check_regex(r, "concat", p);
  return RenameRule::concat(parts, r.require<std::string>("to"), dim);
}

}  // namespace

std::optional<ModelInit> parse_model_init(const ConfigNode& model, const std::vector<std::string>& task_names,
                                          bool check_path) {
  if (!model.has("init")) return std::nullopt;
  ConfigNode n = model.child("init");
  ModelInit init;
  init.path = n.require<std::string>("path");
  n.check(!init.path.empty(), "path",
          "expected a run directory, a checkpoint file, a .safetensors file or a .pt/.pth file of torch.save");
  init.format = n.choice("format", "auto", {"auto", "checkpoint", "safetensors", "torch"});
  init.key = n.get<std::string>("key", "");
  if (n.has("key") && init.format != "auto" && init.format != "torch")
    n.fail("key", "selects an entry of a dict saved by torch.save; format " + init.format + " has no such entries");
  if (check_path) {
    std::error_code ec;
    if (!fs::exists(init.path, ec))
      n.fail("path", "no such file or directory '" + init.path + "' (relative paths start at the working directory, " +
                         fs::current_path().string() + ")");
    if (fs::is_directory(init.path, ec)) {
      if (init.format == "safetensors" || init.format == "torch")
        n.fail("path", "'" + init.path + "' is a directory, not a " +
                           (init.format == "torch" ? "file of torch.save" : ".safetensors file"));
      if (!fs::exists(fs::path(init.path) / "checkpoint.pt", ec))
        n.fail("path", "directory '" + init.path + "' has no checkpoint.pt (is it an mtl run directory?)");
    }
  }

  WeightImportOptions& o = init.import;
  o.load = {"backbone"};
  StringOrList heads = string_or_list(n, "heads", "none", "none, all or a list of task names, e.g. [left, right]");
  if (!heads.is_list) {
    const std::string& h = heads.items[0];
    if (h == "all") {
      o.optional = {"heads"};
    } else if (h == "none") {
      o.ignore = {"heads"};
    } else {
      n.fail("heads", "expected none, all or a list of task names, got '" + h + "' (write [" + h + "] for one head)");
    }
  } else {
    for (size_t i = 0; i < heads.items.size(); ++i) {
      const std::string& t = heads.items[i];
      if (std::find(task_names.begin(), task_names.end(), t) == task_names.end())
        n.fail("heads", "no task '" + t + "' in this config" + did_you_mean(t, task_names) +
                            "; tasks: " + join(task_names));
      if (std::find(heads.items.begin(), heads.items.begin() + i, t) != heads.items.begin() + i)
        n.fail("heads", "task '" + t + "' is listed twice");
      o.load.push_back("heads." + t);
    }
    o.ignore = {"heads"};  // the file's other heads
  }

  for (const auto& p : string_or_list(n, "strip_prefix", "", "a name prefix or a list of them").items)
    if (!p.empty()) o.mapping.strip_prefixes.push_back(p);
  o.mapping.add_prefix = n.get<std::string>("add_prefix", "");
  for (const ConfigNode& r : n.components("rename")) o.mapping.rules.push_back(parse_rename_rule(r));
  const std::string preset = n.choice("preset", std::string("none"), {"none", "torch_transformer_encoder"});
  if (preset == "torch_transformer_encoder") {
    // torch.nn.TransformerEncoder has no embeddings: the blocks must come from the file, the rest of the backbone
    // (embedding, positions, the final norm) where the file has it.
    for (auto& r : torch_transformer_encoder_rules("backbone.")) o.mapping.rules.push_back(std::move(r));
    std::replace(o.load.begin(), o.load.end(), std::string("backbone"), std::string("backbone.blocks"));
    o.optional.push_back("backbone");
  }
  for (const auto& p : string_or_list(n, "ignore", "", "a name prefix or a list of them").items)
    if (!p.empty()) o.ignore.push_back(p);  // e.g. backbone.fc: a classifier the backbone leaves out
  o.adapt_channels = n.get<bool>("adapt_channels", false);
  o.strict = n.get<bool>("strict", true);
  return init;
}

std::string model_init_file(const ModelInit& init) {
  if (fs::is_directory(init.path)) return (fs::path(init.path) / "checkpoint.pt").string();
  return init.path;
}

std::string model_init_format(const ModelInit& init) {
  if (init.format != "auto") return init.format;
  if (fs::is_directory(init.path)) return "checkpoint";
  if (fs::path(init.path).extension() == ".safetensors") return "safetensors";
  // mtl's checkpoints are TorchScript-style archives (constants.pkl); torch.save's zip files are not.
  return is_torch_save_archive(init.path) ? "torch" : "checkpoint";
}

std::string apply_model_init(const ModelInit& init, torch::nn::Module& model) {
  const std::string file = model_init_file(init), format = model_init_format(init);
  if (!init.key.empty() && format != "torch")
    throw Error(file, "model.init.key '" + init.key + "' selects an entry of a dict saved by torch.save, but this is " +
                          (format == "safetensors" ? "a safetensors file" : "an mtl checkpoint"));
  NamedTensors tensors = format == "safetensors" ? read_safetensors(file).tensors
                         : format == "torch"     ? read_torch_state_dict(file, init.key)
                                                 : read_checkpoint_model_tensors(file);
  WeightImportReport r = import_weights(model, tensors, init.import, file);
  if (init.import.strict) {
    std::cerr << "mtl: model.init: loaded " << r.loaded.size() << " tensors from " << file;
    if (!r.converted.empty())
      std::cerr << " (" << r.converted.size() << " converted to the model's dtype or input channels)";
    std::cerr << "\n";
  } else {
    std::cerr << "mtl: note: model.init: " << r.summary() << "\n";
  }
  return file + ": " + r.headline();
}

}  // namespace mtl
