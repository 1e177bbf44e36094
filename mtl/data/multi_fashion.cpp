#include "mtl/data/multi_fashion.h"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>

#include "mtl/config/config_node.h"
#include "mtl/config/option_check.h"
#include "mtl/core/error.h"
#include "mtl/data/idx.h"
#include "mtl/data/image_transform.h"
#include "mtl/data/tensor_dataset.h"

namespace fs = std::filesystem;

namespace mtl {
namespace {

constexpr int64_t kItem = 28;    // Fashion-MNIST item side
constexpr int64_t kCanvas = 36;  // MultiFashion image side
constexpr int64_t kNumClasses = 10;

// Prefers the .gz file the Debian package installs; falls back to an uncompressed copy.
std::string fashion_file(const std::string& root, const std::string& stem) {
  std::string gz = root + "/" + stem + ".gz";
  if (fs::exists(gz)) return gz;
  if (fs::exists(root + "/" + stem)) return root + "/" + stem;
  throw Error(gz, "Fashion-MNIST file not found; install it with `apt-get install dataset-fashion-mnist` "
                  "or set data.root to a directory holding the four *-ubyte.gz files");
}

// Unbiased draw from [0, n) using only rng's raw output (same numbers on every standard library).
uint64_t uniform(std::mt19937_64& rng, uint64_t n) {
  const uint64_t threshold = (0 - n) % n;  // 2^64 mod n: reject the short last bucket
  for (;;) {
    uint64_t x = rng();
    if (x >= threshold) return x % n;
  }
}

// Pastes a 28x28 item into a zeroed side x side canvas at (top, left) by element-wise max.
void paste_max(uint8_t* canvas, int64_t side, const uint8_t* item, int64_t top, int64_t left) {
  for (int64_t y = 0; y < kItem; ++y) {
    uint8_t* dst = canvas + (top + y) * side + left;
    const uint8_t* src = item + y * kItem;
    for (int64_t x = 0; x < kItem; ++x) dst[x] = std::max(dst[x], src[x]);
  }
}

uint32_t fnv1a(const std::string& s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s) h = (h ^ c) * 16777619u;
  return h;
}

DatasetSchema image_schema(int64_t side, const InputTransform& transform, const std::vector<std::string>& label_names) {
  DatasetSchema s;
  s.inputs.push_back(InputInfo{"image", transform.output_shape({1, side, side})});
  for (const auto& name : label_names)
    s.labels.push_back(LabelInfo{name, LabelKind::kClass, kNumClasses, fashion_mnist_classes(), {}});
  return s;
}

// Reads one cache file; any failure names the file and says how to recover.
at::Tensor read_cache_file(const std::string& path, const std::vector<int64_t>& shape) {
  const std::string advice = " (corrupt MultiFashion cache file; delete it to rebuild)";
  at::Tensor t;
  try {
    t = read_idx(path);
  } catch (const Error& e) {
    throw Error(e.where(), e.message() + advice);
  }
  if (t.scalar_type() != at::kByte || t.sizes().vec() != shape) {
    std::string want;
    for (size_t i = 0; i < shape.size(); ++i) want += (i ? ", " : "") + std::to_string(shape[i]);
    throw Error(path, "expected uint8 data of shape [" + want + "]" + advice);
  }
  return t;
}

}  // namespace

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

FashionMnist read_fashion_mnist(const std::string& root, Split split) {
  const std::string prefix = split == Split::kTrain ? "train" : "t10k";
  const std::string images_path = fashion_file(root, prefix + "-images-idx3-ubyte");
  const std::string labels_path = fashion_file(root, prefix + "-labels-idx1-ubyte");
  FashionMnist d{read_idx(images_path), read_idx(labels_path)};
  if (d.images.scalar_type() != at::kByte || d.images.dim() != 3 || d.images.size(1) != kItem ||
      d.images.size(2) != kItem)
    throw Error(images_path, "expected Fashion-MNIST images: uint8 [N, 28, 28]");
  if (d.labels.scalar_type() != at::kByte || d.labels.dim() != 1)
    throw Error(labels_path, "expected Fashion-MNIST labels: uint8 [N]");
  if (d.labels.size(0) != d.images.size(0))
    throw Error(labels_path, "has " + std::to_string(d.labels.size(0)) + " labels but " + images_path + " has " +
                                 std::to_string(d.images.size(0)) + " images");
  if (d.labels.numel() > 0 && d.labels.max().item<int64_t>() >= kNumClasses)
    throw Error(labels_path, "expected labels in [0, 10)");
  return d;
}

std::string resolve_cache_dir(const std::string& option) {
  if (!option.empty()) return option;
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v ? v : "";
  };
  if (!env("MTL_CACHE_DIR").empty()) return env("MTL_CACHE_DIR");
  if (!env("XDG_CACHE_HOME").empty()) return env("XDG_CACHE_HOME") + "/mtl";
  if (!env("HOME").empty()) return env("HOME") + "/.cache/mtl";
  throw Error("cache_dir", "no cache directory: set data.cache_dir, MTL_CACHE_DIR, XDG_CACHE_HOME or HOME");
}

MultiFashionOptions MultiFashionOptions::from_config(const ConfigNode& node) {
  MultiFashionOptions o;
  o.root = node.get<std::string>("root", o.root);
  o.cache_dir = node.get<std::string>("cache_dir", o.cache_dir);
  o.seed = node.get<int64_t>("seed", o.seed);
  o.train_size = node.get<int64_t>("train_size", o.train_size);
  o.test_size = node.get<int64_t>("test_size", o.test_size);
  o.max_shift = node.get<int64_t>("max_shift", o.max_shift);
  o.transform = image_transform_from_config(node, 1);
  o.dense = node.get<bool>("dense", o.dense);
  node.check(!(o.dense && !o.transform.size.empty()), "resize",
             "resizing is not available with dense: true (the per-pixel labels stay at the canvas size)");
  validate_config(node, [&] { o.validate(); });
  return o;
}

void MultiFashionOptions::validate() const {
  check(seed >= 0, "seed", "expected a number >= 0, got " + std::to_string(seed));
  check(train_size > 0, "train_size", "expected a positive number, got " + std::to_string(train_size));
  check(test_size > 0, "test_size", "expected a positive number, got " + std::to_string(test_size));
  check(max_shift >= 0 && max_shift <= 4, "max_shift", "expected a value in [0, 4], got " + std::to_string(max_shift));
}

MultiFashionSource::MultiFashionSource(MultiFashionOptions options) : options_(std::move(options)) {
  validate_options("MultiFashionOptions", [&] { options_.validate(); });
}

MultiFashionData build_multi_fashion(const FashionMnist& source, int64_t size, int64_t max_shift, int64_t seed,
                                     Split split) {
  TORCH_CHECK(size >= 0 && max_shift >= 0 && max_shift <= kCanvas - kItem, "bad MultiFashion parameters");
  const at::Tensor images = source.images.contiguous();
  const at::Tensor labels = source.labels.to(at::kLong).contiguous();
  const int64_t m = images.size(0);
  const uint8_t* src = images.data_ptr<uint8_t>();
  const int64_t* cls = labels.data_ptr<int64_t>();

  std::array<std::vector<int32_t>, kNumClasses> others;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t c = 0; c < kNumClasses; ++c)
      if (cls[i] != c) others[c].push_back(static_cast<int32_t>(i));
  for (int64_t i = 0; i < m; ++i)
    if (others[cls[i]].empty()) throw Error("multi_fashion", "the source split holds a single class");

  const uint64_t useed = static_cast<uint64_t>(seed);
  std::seed_seq seq{static_cast<uint32_t>(useed), static_cast<uint32_t>(useed >> 32),
                    static_cast<uint32_t>(split == Split::kTrain ? 0 : 1)};
  std::mt19937_64 rng(seq);

  MultiFashionData out;
  out.images = at::empty({size, kCanvas, kCanvas}, at::kByte);  // each canvas is zeroed when drawn
  out.left = at::empty({size}, at::kByte);
  out.right = at::empty({size}, at::kByte);
  uint8_t* canvas = out.images.data_ptr<uint8_t>();
  uint8_t* left_label = out.left.data_ptr<uint8_t>();
  uint8_t* right_label = out.right.data_ptr<uint8_t>();
  out.provenance = at::empty({size, 6}, at::kLong);
  int64_t* prov = out.provenance.data_ptr<int64_t>();

  std::vector<int32_t> perm(m);
  for (int64_t i = 0; i < m; ++i) perm[i] = static_cast<int32_t>(i);
  const uint64_t shifts = static_cast<uint64_t>(max_shift) + 1;
  const int64_t far = kCanvas - kItem;

  for (int64_t k = 0; k < size; ++k) {
    if (k % m == 0)
      for (int64_t i = m - 1; i > 0; --i) std::swap(perm[i], perm[uniform(rng, i + 1)]);
    const int64_t l = perm[k % m];
    const auto& pool = others[cls[l]];
    const int64_t r = pool[uniform(rng, pool.size())];
    const int64_t dy = uniform(rng, shifts), dx = uniform(rng, shifts);
    const int64_t dy2 = uniform(rng, shifts), dx2 = uniform(rng, shifts);
    uint8_t* img = canvas + k * kCanvas * kCanvas;
    std::memset(img, 0, kCanvas * kCanvas);
    paste_max(img, kCanvas, src + l * kItem * kItem, dy, dx);
    paste_max(img, kCanvas, src + r * kItem * kItem, far - dy2, far - dx2);
    left_label[k] = static_cast<uint8_t>(cls[l]);
    right_label[k] = static_cast<uint8_t>(cls[r]);
    int64_t* p = prov + 6 * k;
    p[0] = l, p[1] = r, p[2] = dy, p[3] = dx, p[4] = dy2, p[5] = dx2;
  }
  return out;
}

MultiFashionDense multi_fashion_dense_labels(const FashionMnist& source, const MultiFashionData& data) {
  TORCH_CHECK(data.provenance.defined(), "multi_fashion_dense_labels needs built examples (with provenance)");
  const at::Tensor images = source.images.contiguous();
  const at::Tensor prov = data.provenance.contiguous();
  const int64_t n = prov.size(0), far = kCanvas - kItem;
  MultiFashionDense out{at::zeros({n, kCanvas, kCanvas}, at::kByte), at::zeros({n, kCanvas, kCanvas}, at::kByte)};
  const uint8_t* src = images.data_ptr<uint8_t>();
  const int64_t* p = prov.data_ptr<int64_t>();
  uint8_t* seg = out.segment.data_ptr<uint8_t>();
  uint8_t* left = out.left_pixels.data_ptr<uint8_t>();
  for (int64_t k = 0; k < n; ++k, p += 6) {
    const uint8_t* l_item = src + p[0] * kItem * kItem;
    const uint8_t* r_item = src + p[1] * kItem * kItem;
    uint8_t* s = seg + k * kCanvas * kCanvas;
    uint8_t* v = left + k * kCanvas * kCanvas;
    for (int64_t y = 0; y < kItem; ++y)
      for (int64_t x = 0; x < kItem; ++x) {
        const int64_t at_left = (p[2] + y) * kCanvas + p[3] + x;
        const int64_t at_right = (far - p[4] + y) * kCanvas + far - p[5] + x;
        v[at_left] = l_item[y * kItem + x];
        if (l_item[y * kItem + x] >= kItemPixel) s[at_left] |= 1;
        if (r_item[y * kItem + x] >= kItemPixel) s[at_right] |= 2;
      }
  }
  return out;
}

std::string multi_fashion_cache_prefix(const MultiFashionOptions& o, Split split) {
  const int64_t size = split == Split::kTrain ? o.train_size : o.test_size;
  const std::string root = fs::absolute(o.root).lexically_normal().string();
  char hash[16];
  std::snprintf(hash, sizeof hash, "%08x", fnv1a(root));
  return resolve_cache_dir(o.cache_dir) + "/multi_fashion_v1_s" + std::to_string(o.seed) + "_n" +
         std::to_string(size) + "_shift" + std::to_string(o.max_shift) + "_" + to_string(split) + "_r" + hash;
}

MultiFashionData load_multi_fashion(const MultiFashionOptions& o, Split split, bool* from_cache) {
  const int64_t size = split == Split::kTrain ? o.train_size : o.test_size;
  const std::string prefix = multi_fashion_cache_prefix(o, split);
  const std::string images_path = prefix + "-images-idx3-ubyte";
  const std::string left_path = prefix + "-left-labels-idx1-ubyte";
  const std::string right_path = prefix + "-right-labels-idx1-ubyte";

  if (fs::exists(images_path) && fs::exists(left_path) && fs::exists(right_path)) {
    if (from_cache) *from_cache = true;
    MultiFashionData d;
    d.images = read_cache_file(images_path, {size, kCanvas, kCanvas});
    d.left = read_cache_file(left_path, {size});
    d.right = read_cache_file(right_path, {size});
    return d;
  }

  MultiFashionData d = build_multi_fashion(read_fashion_mnist(o.root, split), size, o.max_shift, o.seed, split);
  const std::string dir = fs::path(prefix).parent_path().string();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(dir, "cannot create the cache directory: " + ec.message());
  // Each file appears atomically; the set is complete once the images (checked first above) exist
  // together with both label files, and a rebuild writes identical bytes.
  // Uncompressed: gzip would halve the size but make every later load ~2x slower than a rebuild.
  write_idx(left_path, d.left, false);
  write_idx(right_path, d.right, false);
  write_idx(images_path, d.images, false);
  if (from_cache) *from_cache = false;
  return d;
}

DatasetSchema MultiFashionSource::schema() const {
  DatasetSchema s = image_schema(kCanvas, options_.transform, {"left", "right"});
  if (options_.dense) {
    s.labels.push_back(
        LabelInfo{"segment", LabelKind::kPixelClass, 4, {"background", "left", "right", "overlap"}, {kCanvas, kCanvas}});
    s.labels.push_back(LabelInfo{"left_pixels", LabelKind::kPixelReal, 1, {}, {kCanvas, kCanvas}});
  }
  return s;
}

std::shared_ptr<Dataset> MultiFashionSource::open(Split split) const {
  MultiFashionData d;
  TensorMap labels;
  if (options_.dense) {  // the dense labels need the provenance, which the cache does not keep
    const FashionMnist source = read_fashion_mnist(options_.root, split);
    d = build_multi_fashion(source, split == Split::kTrain ? options_.train_size : options_.test_size,
                            options_.max_shift, options_.seed, split);
    MultiFashionDense dense = multi_fashion_dense_labels(source, d);
    labels = {{"segment", dense.segment}, {"left_pixels", dense.left_pixels}};
  } else {
    d = load_multi_fashion(options_, split);
  }
  labels["left"] = d.left;
  labels["right"] = d.right;
  return std::make_shared<TensorDataset>(schema(), d.images.unsqueeze(1), std::move(labels),
                                         options_.transform, multi_fashion_cache_prefix(options_, split));
}

FashionMnistOptions FashionMnistOptions::from_config(const ConfigNode& node) {
  FashionMnistOptions o;
  o.root = node.get<std::string>("root", o.root);
  o.transform = image_transform_from_config(node, 1);
  o.train_size = node.get<int64_t>("train_size", o.train_size);
  o.test_size = node.get<int64_t>("test_size", o.test_size);
  o.canvas = node.get<int64_t>("canvas", o.canvas);
  o.classes = node.get<std::vector<int64_t>>("classes", o.classes);
  validate_config(node, [&] { o.validate(); });
  if (o.canvas > kItem) {  // placement and seed only mean something on a canvas
    o.placement = node.get<std::string>("placement", o.placement);
    o.seed = node.get<int64_t>("seed", o.seed);
    validate_config(node, [&] { o.validate(); });
  }
  return o;
}

void FashionMnistOptions::validate() const {
  check(train_size >= 0, "train_size", "expected a number >= 0, got " + std::to_string(train_size));
  check(test_size >= 0, "test_size", "expected a number >= 0, got " + std::to_string(test_size));
  check(canvas >= 0, "canvas", "expected a number >= 0, got " + std::to_string(canvas));
  check(canvas == 0 || canvas >= kItem, "canvas",
        "expected 0 (28 x 28 as is) or a side of at least 28, got " + std::to_string(canvas));
  check_choice("placement", placement, {"random", "center"});
  check(seed >= 0, "seed", "expected a number >= 0, got " + std::to_string(seed));
  for (int64_t c : classes)
    check(c >= 0 && c < 10, "classes", "expected Fashion-MNIST classes 0..9, got " + std::to_string(c));
}

FashionMnistSource::FashionMnistSource(FashionMnistOptions options) : options_(std::move(options)) {
  validate_options("FashionMnistOptions", [&] { options_.validate(); });
}

DatasetSchema FashionMnistSource::schema() const {
  return image_schema(options_.canvas > kItem ? options_.canvas : kItem, options_.transform, {"class"});
}

std::shared_ptr<Dataset> FashionMnistSource::open(Split split) const {
  FashionMnist d = read_fashion_mnist(options_.root, split);
  const int64_t limit = split == Split::kTrain ? options_.train_size : options_.test_size;
  if (limit > d.images.size(0))
    throw Error(options_.root, std::string(split == Split::kTrain ? "train_size " : "test_size ") +
                                   std::to_string(limit) + " exceeds the " + std::to_string(d.images.size(0)) +
                                   " examples of the Fashion-MNIST " + to_string(split) + " split");
  if (limit > 0) {
    d.images = d.images.slice(0, 0, limit);
    d.labels = d.labels.slice(0, 0, limit);
  }
  if (!options_.classes.empty()) {  // after the size limit: train_size counts examples of every class
    at::Tensor keep = at::zeros_like(d.labels, at::kBool);
    for (int64_t c : options_.classes) keep.logical_or_(d.labels.to(at::kLong).eq(c));
    const at::Tensor rows = keep.nonzero().squeeze(1);
    d.images = d.images.index_select(0, rows);
    d.labels = d.labels.index_select(0, rows);
  }
  const int64_t side = options_.canvas;
  if (side > kItem) {
    // Offsets depend on (seed, split, example) only: the same images in every run.
    const int64_t n = d.images.size(0), room = side - kItem;
    at::Tensor canvas = at::zeros({n, side, side}, at::kByte);
    std::mt19937_64 rng(static_cast<uint64_t>(options_.seed) * 2 + (split == Split::kTrain ? 0 : 1));
    std::uniform_int_distribution<int64_t> offset(0, room);
    at::Tensor items = d.images.contiguous();
    for (int64_t i = 0; i < n; ++i) {
      int64_t dy = room / 2, dx = room / 2;
      if (options_.placement == "random") {
        dy = offset(rng);
        dx = offset(rng);
      }
      paste_max(canvas.data_ptr<uint8_t>() + i * side * side, side, items.data_ptr<uint8_t>() + i * kItem * kItem, dy, dx);
    }
    d.images = canvas;
  }
  return std::make_shared<TensorDataset>(schema(), d.images.unsqueeze(1), TensorMap{{"class", d.labels}},
                                         options_.transform, options_.root);
}

std::shared_ptr<DatasetSource> make_multi_fashion_source(const ConfigNode& node) {
  return std::make_shared<MultiFashionSource>(MultiFashionOptions::from_config(node));
}

std::shared_ptr<DatasetSource> make_fashion_mnist_source(const ConfigNode& node) {
  return std::make_shared<FashionMnistSource>(FashionMnistOptions::from_config(node));
}

}  // namespace mtl
