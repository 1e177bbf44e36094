// How a weights file's tensors become the model's: names stripped of a prefix, given one, renamed by regular
// expressions, and fused tensors split or separate ones concatenated, so that layouts other than the model's own
// (PyTorch's fused attention projections, separate query/key/value files) load without a conversion script.
//
//   mtl::NameMapping m;
//   m.strip_prefixes = {"module"};                       // "module.layers.0.q.weight" -> "layers.0.q.weight"
//   m.rules.push_back(mtl::RenameRule::concat(           // layers.0.{q,k,v}.weight -> layers.0.qkv.weight
//       {"^(.*)\\.q\\.(\\w+)$", "^(.*)\\.k\\.(\\w+)$", "^(.*)\\.v\\.(\\w+)$"}, "$1.qkv.$2", 0));
//   mtl::MappedTensors mapped = mtl::map_tensors(file_tensors, m, path);
//
// Prefixes are dotted: "a.b" strips "a.b." from "a.b.c", never from "a.bc".
#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "mtl/io/safetensors.h"  // NamedTensors

namespace mtl {

/// One step of a name mapping, applied to every tensor in turn (ECMAScript regexes, std::regex_replace
/// replacements, "$1" for groups):
///   rename  one regex `from[0]`, one replacement `to[0]`: a matching name is rewritten.
///   split   one regex `from[0]`, one replacement per part in `to`: a matching tensor becomes parts along `dim`,
///           of `sizes` (equal parts when empty), named by the replacements.
///   concat  one regex per part in `from`, one replacement `to[0]`: tensors whose names match part i's regex and
///           rewrite to the same name are concatenated along `dim` in part order; every part must be there.
struct RenameRule {
  enum class Kind { rename, split, concat };
  Kind kind = Kind::rename;
  std::vector<std::string> from;
  std::vector<std::string> to;
  int64_t dim = 0;
  std::vector<int64_t> sizes;

  RenameRule() = default;
  /// A rename rule, so that {{"^a\\.", "b."}} lists rename rules.
  RenameRule(std::string from_regex, std::string replacement);
  static RenameRule split(std::string from_regex, std::vector<std::string> part_names, int64_t dim,
                          std::vector<int64_t> sizes = {});
  static RenameRule concat(std::vector<std::string> part_regexes, std::string name, int64_t dim);

  /// "rename '^a' -> 'b'", "split '...' into 3", "concat 3 parts into '...'": for error messages.
  std::string describe() const;
};

/// The first matching strip prefix is removed, then add_prefix is prepended, then the rules apply in order.
/// Prefixes are dotted: "encoder" (or "encoder.") strips "encoder." and add_prefix "backbone" prepends "backbone.".
struct NameMapping {
  std::vector<std::string> strip_prefixes;
  std::string add_prefix;
  std::vector<RenameRule> rules;

  /// The name one file tensor gets. Throws mtl::Error for an invalid regex (check_rename_regex catches it
  /// earlier) or when the mapping splits or concatenates (the name alone cannot say: use map_tensors).
  std::string apply(const std::string& file_name) const;
};

/// A tensor under its model name, with the file name(s) it came from (for messages).
struct MappedTensor {
  std::string name;
  at::Tensor tensor;
  std::string origin;  // "layers.0.in_proj_weight", "layers.0.in_proj_weight (part 2 of 3)", "a + b + c"
};
using MappedTensors = std::vector<MappedTensor>;

/// Applies `mapping` to a file's tensors, in the file's order (split parts in place; a concatenation where its
/// first part was). Throws mtl::Error(source_path, ...) naming the rule and the tensor when a split does not fit
/// (dim out of range, sizes that do not add up, a size not divisible into equal parts) or a concatenation lacks a
/// part, has a part twice, or has parts whose shapes differ off `dim`.
MappedTensors map_tensors(const NamedTensors& source, const NameMapping& mapping, const std::string& source_path);

/// Rename rules for `model.init.preset: torch_transformer_encoder`: torch.nn.TransformerEncoder names (any
/// prefix, then layers.<i>.self_attn.in_proj_weight / in_proj_bias / out_proj.*, linear1.*, linear2.*, norm1.*,
/// norm2.*, and the encoder's final norm.*) onto mtl's transformer backbone (blocks.<i>.qkv.*, proj.*, ffn1.*,
/// ffn2.*, norm1.*, norm2.*, final_norm.*) under `prefix` ("backbone."). in_proj_weight is already mtl's fused
/// [3 dim, dim] q/k/v layout, so nothing is split.
std::vector<RenameRule> torch_transformer_encoder_rules(const std::string& prefix);

/// "" when `pattern` is a valid ECMAScript regex, else why not (for config validation).
std::string check_rename_regex(const std::string& pattern);

}  // namespace mtl
