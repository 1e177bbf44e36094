// Importing weights from a file made elsewhere (an earlier mtl run, a safetensors file from Python) into a
// model: file names are mapped to the model's names, every tensor is checked (name, shape, dtype) before any
// is copied, and a report says what was loaded, missing, unexpected, mismatched or converted.
//
//   mtl::WeightImportOptions o;
//   o.mapping.strip_prefix = {"encoder"};   // "encoder.conv1.weight" -> "conv1.weight"
//   o.mapping.add_prefix = "backbone";       //                        -> "backbone.conv1.weight"
//   (o.mapping.rules rename, split and concatenate: see name_mapping.h)
//   o.load = {"backbone"};
//   o.ignore = {"heads"};
//   mtl::WeightImportReport r = mtl::import_weights(*model, mtl::read_safetensors(path).tensors, o, path);
//
// Prefixes are dotted: "a.b" selects "a.b" and "a.b.*", never "a.bc".
#pragma once

#include <torch/nn/module.h>

#include <string>
#include <vector>

#include "mtl/io/name_mapping.h"
#include "mtl/io/safetensors.h"  // NamedTensors

namespace mtl {

struct WeightImportOptions {
  NameMapping mapping;
  /// Mismatches, missing and unexpected tensors are errors (nothing is copied); false: load the rest.
  bool strict = true;
  /// Model prefixes whose tensors must all come from the file, e.g. "backbone", "heads.left".
  std::vector<std::string> load;
  /// Model prefixes taken from the file where it has them, one sub-module at a time: with "heads", each
  /// heads.<task> the file has any tensor of is loaded completely (its absent tensors are missing), and each
  /// it has none of keeps its fresh initialisation.
  std::vector<std::string> optional;
  /// Prefixes of mapped file names dropped silently (not reported as unexpected), e.g. "heads" when only the
  /// backbone is wanted, or "backbone.fc" for a classifier the backbone lacks: a name is dropped when an ignore
  /// prefix selects it more narrowly than every `load` / `optional` prefix that selects it.
  std::vector<std::string> ignore;
  /// Convolution kernels whose input channels differ, one side having a single channel (a 3-channel first
  /// convolution for gray images, or the reverse), are adapted instead of mismatched: summed over the file's
  /// channels, or spread evenly over the model's; reported as converted.
  bool adapt_channels = false;
};

struct WeightImportReport {
  std::vector<std::string> loaded;      // model names copied from the file
  std::vector<std::string> missing;     // model names that should have come from the file but are not in it
  std::vector<std::string> unexpected;  // mapped file names the model has no place for
  std::vector<std::string> mismatched;  // "name: file [3, 4] F16 vs model [4, 4] F32" (shape or kind of dtype)
  std::vector<std::string> converted;   // "name: F16 -> F32": floats of another precision, converted

  /// One line of counts: "loaded 10 tensors; 2 missing, 1 unexpected, 0 mismatched, 3 converted".
  std::string headline() const;
  /// The headline plus the names of each non-empty list (long lists shortened), one list per line.
  std::string summary() const;
};

/// Copies tensors of `source` (a file's name -> tensor, `source_path` names it in errors) into the
/// parameters and buffers of `model` as `options` say. Floating-point tensors of another precision are
/// converted; anything else of another dtype or shape is a mismatch. Throws mtl::Error(source_path, ...), with
/// nothing copied, when strict and anything is missing, unexpected or mismatched, when nothing at all would be
/// loaded (surely a wrong mapping), or when two file names map to one model name.
WeightImportReport import_weights(torch::nn::Module& model, const NamedTensors& source,
                                  const WeightImportOptions& options, const std::string& source_path);

}  // namespace mtl
