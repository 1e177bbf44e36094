// Fashion-MNIST and MultiFashion, the two-task benchmark of Pareto MTL (Lin et al., 2019): each example
// is a 36x36 image overlaying two Fashion-MNIST items of different classes, one at the top-left
// ("left" task) and one at the bottom-right ("right" task).
//
// Dataset sources (registered as "fashion_mnist" and "multi_fashion", options under `data:`):
//   mtl::MultiFashionOptions o;  o.train_size = 2000;  auto source = std::make_shared<mtl::MultiFashionSource>(o);
//   multi_fashion: root, cache_dir, seed, train_size, test_size, max_shift, dense, and normalize, channels, resize
//   fashion_mnist: root, train_size, test_size, canvas, placement, seed, and normalize, channels, resize
//   (normalize, channels and resize: image_transform.h)
//
// How a MultiFashion split is built (exactly; the cache name carries a version tag for this scheme):
//   source   = the Fashion-MNIST train split for "train", the t10k split for "test" (M items, 28x28).
//   rng      = std::mt19937_64 seeded by std::seed_seq{seed low 32 bits, seed high 32 bits, split}
//              (split: 0 train, 1 test). uniform(n) = x mod n for the first raw 64-bit draw x of rng with
//              x >= (2^64 mod n), an unbiased draw from [0, n). (Not std::uniform_int_distribution or
//              std::shuffle, whose algorithms vary between standard libraries: the data are the same on
//              every platform.)
//   perm     = 0..M-1, shuffled by Fisher-Yates (i from M-1 down to 1, swap perm[i] and perm[uniform(i+1)])
//              at the start of every pass over the source (before examples 0, M, 2M, ...).
//   example k, drawing in this order:
//     left   = perm[k mod M]                      (so each item is "left" size/M times)
//     right  = others[c][uniform(|others[c]|)]    c = class of left; others[c] = the items of every other
//                                                 class, in ascending source index
//     dy, dx   = uniform(max_shift + 1) each      left's top-left corner at (dy, dx)
//     dy', dx' = uniform(max_shift + 1) each      right's top-left corner at (8 - dy', 8 - dx')
//     image  = element-wise max of the two items pasted on a zero 36x36 canvas (36 - 28 = 8)
//     labels = the classes of left and right (always different)
//
// Dense labels (`dense: true`), for dense prediction: per pixel of the 36x36 canvas,
//   segment      = 0 background, 1 left item, 2 right item, 3 both (overlap), where an item covers the pixels of
//                  its own 28x28 image with value >= kItemPixel (26, about 10% of full intensity)
//   left_pixels  = the left item's own intensity in [0, 1] (0 outside it): what the composite shows of it except
//                  where the right item is brighter, which the max hides.
// They come from the provenance, so a dense split is built from Fashion-MNIST at every load (about a second for
// the default train split) instead of read from the cache.
//
// The built splits are cached as uncompressed IDX files (uint8 images [N,36,36]; uint8 labels [N]; 156 MB
// for the default train split) in the cache directory, named by every parameter that changes them, e.g.
//   multi_fashion_v1_s0_n120000_shift4_train_r1a2b3c4d-images-idx3-ubyte   (+ -left-/-right-labels-idx1-ubyte)
// (r... = hash of the Fashion-MNIST root). Files are written atomically, so a crashed run leaves no
// partial file; a cache file that fails to read is reported as an mtl::Error naming it, with the advice
// to delete it (it is not silently rebuilt: that would hide a disk or concurrency problem).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mtl/data/dataset.h"
#include "mtl/data/tensor_dataset.h"  // InputTransform

namespace mtl {

class ConfigNode;

/// The ten Fashion-MNIST class names, in label order (0 = "T-shirt/top", ..., 9 = "Ankle boot").
const std::vector<std::string>& fashion_mnist_classes();

/// The default location of the Debian package dataset-fashion-mnist.
constexpr const char* kFashionMnistRoot = "/usr/share/datasets/fashion-mnist";

/// One raw Fashion-MNIST split: images uint8 [M,28,28], labels uint8 [M] in [0, 10).
struct FashionMnist {
  at::Tensor images;
  at::Tensor labels;
};

/// Reads `root`/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz (or the uncompressed files) and checks
/// shapes, counts and label range. A missing file is an mtl::Error naming it and the package to install.
FashionMnist read_fashion_mnist(const std::string& root, Split split);

/// mtl's cache directory: `option` when not empty, else $MTL_CACHE_DIR, else $XDG_CACHE_HOME/mtl, else
/// $HOME/.cache/mtl.
std::string resolve_cache_dir(const std::string& option);

struct MultiFashionOptions {
  std::string root = kFashionMnistRoot;
  std::string cache_dir;  // "" = resolve_cache_dir("")
  int64_t seed = 0;
  int64_t train_size = 120000;
  int64_t test_size = 20000;
  int64_t max_shift = 4;  // 0..4: the canvas leaves 8 pixels for both items' shifts
  // normalize (default (x - 0.5) / 0.5), channels, resize: image_transform.h
  InputTransform transform = InputTransform::normalization({0.5}, {0.5});
  bool dense = false;     // also the per-pixel labels "segment" and "left_pixels" (above)

  /// Reads and validates the options of a `data:` node (its `type` is read by the caller).
  static MultiFashionOptions from_config(const ConfigNode& node);
  /// Throws mtl::Error(key, expected) for the first bad value.
  void validate() const;
};

/// One built MultiFashion split: images uint8 [N,36,36], left and right class labels uint8 [N].
struct MultiFashionData {
  at::Tensor images;
  at::Tensor left;
  at::Tensor right;
  /// Which source items were used, int64 [N, 6]: left index, right index, dy, dx, dy', dx'. Set by
  /// build_multi_fashion only (not cached); for checks and analysis.
  at::Tensor provenance;
};

/// A pixel of a Fashion-MNIST item counts as the item's in the segment label from this value on.
constexpr int kItemPixel = 26;

/// The dense labels of built examples: segment uint8 [N,36,36] in [0, 4) and left_pixels uint8 [N,36,36] (the
/// left item's values; the dataset scales them to [0, 1]).
struct MultiFashionDense {
  at::Tensor segment;
  at::Tensor left_pixels;
};

/// The dense labels of `data` (which must carry its provenance: build_multi_fashion's output) over `source`.
MultiFashionDense multi_fashion_dense_labels(const FashionMnist& source, const MultiFashionData& data);

/// Builds `size` examples from `source` by the scheme above (no I/O; `split` picks the random stream).
MultiFashionData build_multi_fashion(const FashionMnist& source, int64_t size, int64_t max_shift, int64_t seed,
                                     Split split);

/// Path prefix of a split's cache files inside the resolved cache directory (see above).
std::string multi_fashion_cache_prefix(const MultiFashionOptions& options, Split split);

/// Loads a split from the cache, or builds it from Fashion-MNIST and writes the cache. `from_cache`, when
/// given, reports which happened.
MultiFashionData load_multi_fashion(const MultiFashionOptions& options, Split split, bool* from_cache = nullptr);

/// Schema: input "image" {1,36,36}; class labels "left" and "right" with the Fashion-MNIST class names; with
/// `dense`, also "segment" (pixel classes background/left/right/overlap) and "left_pixels" (pixel values).
class MultiFashionSource : public DatasetSource {
 public:
  /// Throws mtl::Error "MultiFashionOptions.<key>: ..." for bad options.
  explicit MultiFashionSource(MultiFashionOptions options);
  DatasetSchema schema() const override;
  std::shared_ptr<Dataset> open(Split split) const override;
  const MultiFashionOptions& options() const { return options_; }

 private:
  MultiFashionOptions options_;
};

struct FashionMnistOptions {
  std::string root = kFashionMnistRoot;
  // normalize (default (x - 0.5) / 0.5), channels, resize: image_transform.h
  InputTransform transform = InputTransform::normalization({0.5}, {0.5});
  int64_t train_size = 0;  // use the first N examples; 0 = all
  int64_t test_size = 0;
  int64_t canvas = 0;              // > 28: each item pasted on a canvas x canvas black image (e.g. 36, the
                                   // MultiFashion size, so that one backbone fits both); 0 = 28 x 28 as is
  std::string placement = "random";  // on a canvas: random (uniform offsets, per example) | center
  int64_t seed = 0;                // random placement
  std::vector<int64_t> classes;    // keep only examples of these classes (labels unchanged); empty = all.
                                   // E.g. a trunk trained on the classes a few-shot benchmark meta-trains on

  /// Reads and validates the options of a `data:` node (placement and seed only with a canvas).
  static FashionMnistOptions from_config(const ConfigNode& node);
  /// Throws mtl::Error(key, expected) for the first bad value.
  void validate() const;
};

/// Plain Fashion-MNIST. Schema: input "image" {1,28,28} (or {1,canvas,canvas}); class label "class".
class FashionMnistSource : public DatasetSource {
 public:
  /// Throws mtl::Error "FashionMnistOptions.<key>: ..." for bad options.
  explicit FashionMnistSource(FashionMnistOptions options);
  DatasetSchema schema() const override;
  std::shared_ptr<Dataset> open(Split split) const override;

 private:
  FashionMnistOptions options_;
};

/// Registry factories (see register_builtin_datasets).
std::shared_ptr<DatasetSource> make_multi_fashion_source(const ConfigNode& node);
std::shared_ptr<DatasetSource> make_fashion_mnist_source(const ConfigNode& node);

}  // namespace mtl
