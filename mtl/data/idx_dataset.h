// The "idx" dataset source: a user's own image data as IDX files (the MNIST format, see idx.h), one file
// of images and one file per label, for each split.
//
//   data:
//     type: idx
//     train: {images: data/train-images.gz, labels: {digit: data/train-digits.gz, parity: data/train-parity.gz}}
//     test:  {images: data/test-images.gz,  labels: {digit: data/test-digits.gz,  parity: data/test-parity.gz}}
//     num_classes: {digit: 10}    # optional; default: largest label in the train file + 1
//     normalize: true             # (x - 0.5) / 0.5 after scaling uint8 pixels to [0, 1]; also imagenet, false,
//                                 # {mean: [..], std: [..]}; channels, resize (image_transform.h)
//
// Images: uint8 (scaled to [0,1]) or float (taken as they are), [N,H,W] (one channel) or [N,C,H,W], any
// size; the schema's input is "image" {C,H,W}. Labels: an integer file [N] is a class label; a float file
// [N] or [N,K] is a real-valued label of size 1 or K. The test split must name the same labels and hold
// examples of the same shape. Relative paths are relative to the current working directory.
//
//   mtl::IdxOptions o;  o.train = {"train-images.gz", {{"digit", "train-digits.gz"}}};  o.test = {...};
//   auto source = std::make_shared<mtl::IdxSource>(o);
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "mtl/data/dataset.h"
#include "mtl/data/tensor_dataset.h"

namespace mtl {

class ConfigNode;

struct IdxSplitFiles {
  std::string images;
  std::vector<std::pair<std::string, std::string>> labels;  // (label name, path), in config order
};

struct IdxOptions {
  IdxSplitFiles train;
  IdxSplitFiles test;
  std::map<std::string, int64_t> num_classes;  // per class label; absent = from the train file
  // normalize (default (x - 0.5) / 0.5), channels, resize: image_transform.h
  InputTransform transform = InputTransform::normalization({0.5}, {0.5});

  /// Reads and validates the options of a `data:` node (its `type` is read by the caller).
  static IdxOptions from_config(const ConfigNode& node);
  /// Throws mtl::Error(key, expected) for the first bad value (what from_config checks, for C++ callers).
  void validate() const;
};

class IdxSource : public DatasetSource {
 public:
  /// Throws mtl::Error "IdxOptions.<key>: ..." for bad options.
  explicit IdxSource(IdxOptions options);
  /// Reads the file headers, and the train label files of class labels without `num_classes`; computed
  /// once.
  DatasetSchema schema() const override;
  std::shared_ptr<Dataset> open(Split split) const override;

 private:
  IdxOptions options_;
  mutable std::once_flag schema_once_;
  mutable DatasetSchema schema_;
};

std::shared_ptr<DatasetSource> make_idx_source(const ConfigNode& node);

}  // namespace mtl
