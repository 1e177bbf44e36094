// MultiFashion and Fashion-MNIST sources: shapes, labels, the placement rule, the documented random
// scheme, determinism, the on-disk cache, and option errors. Tests that need the Fashion-MNIST files skip
// when the package is not installed.
#include "mtl/data/multi_fashion.h"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>

#include "mtl/config/config_node.h"
#include "mtl/core/error.h"
#include "mtl/data/idx.h"
#include "test_util.h"

using namespace std::string_literals;

namespace {

using mtl_test::TempDir;

#define REQUIRE_FASHION_MNIST()                                                           \
  if (!mtl_test::have_fashion_mnist())                                                    \
  GTEST_SKIP() << "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)"

using Made = mtl_test::MadeSource;

constexpr auto make = mtl_test::make_source;  // the registered factory, as a run uses it

std::string small(const std::string& cache) {
  return "  cache_dir: " + cache + "\n  train_size: 2000\n  test_size: 500\n";
}

torch::Tensor place(const torch::Tensor& item, int64_t top, int64_t left) {
  torch::Tensor c = torch::zeros({36, 36}, torch::kByte);
  c.slice(0, top, top + 28).slice(1, left, left + 28).copy_(item);
  return c;
}

}  // namespace

TEST(MultiFashion, SchemaIsKnownWithoutLoading) {
  Made m = make("multi_fashion", "  root: /nonexistent\n");
  mtl::DatasetSchema s = m.source->schema();
  ASSERT_EQ(s.inputs.size(), 1u);
  EXPECT_EQ(s.inputs[0].name, "image");
  EXPECT_EQ(s.inputs[0].shape, (std::vector<int64_t>{1, 36, 36}));
  EXPECT_EQ(s.label_names(), (std::vector<std::string>{"left", "right"}));
  for (const auto& l : s.labels) {
    EXPECT_EQ(l.kind, mtl::LabelKind::kClass);
    EXPECT_EQ(l.size, 10);
    EXPECT_EQ(l.classes, mtl::fashion_mnist_classes());
  }
  EXPECT_EQ(mtl::fashion_mnist_classes()[9], "Ankle boot");
}

TEST(MultiFashion, ReadsEveryOptionAndRecordsDefaults) {
  Made m = make("multi_fashion", "  seed: 3\n");
  auto* src = dynamic_cast<mtl::MultiFashionSource*>(m.source.get());
  ASSERT_NE(src, nullptr);
  EXPECT_EQ(src->options().seed, 3);
  EXPECT_EQ(src->options().train_size, 120000);
  EXPECT_EQ(src->options().test_size, 20000);
  EXPECT_EQ(src->options().max_shift, 4);
  EXPECT_EQ(src->options().transform.mean, std::vector<double>{0.5});  // normalize: true
  EXPECT_EQ(src->options().transform.channels, 0);
  EXPECT_TRUE(src->options().transform.size.empty());
  EXPECT_NO_THROW(m.cfg.check_unused());
  std::string resolved = m.cfg.resolved_yaml();
  for (const char* key : {"root", "cache_dir", "seed", "train_size", "test_size", "max_shift", "normalize"})
    EXPECT_NE(resolved.find(key), std::string::npos) << key << " missing from\n" << resolved;
}

TEST(MultiFashion, RejectsBadOptions) {
  EXPECT_MTL_ERROR(make("multi_fashion", "  max_shift: 5\n"), "data.max_shift"s, "[0, 4]"s);
  EXPECT_MTL_ERROR(make("multi_fashion", "  train_size: 0\n"), "data.train_size"s, "positive"s);
  EXPECT_MTL_ERROR(make("multi_fashion", "  seed: abc\n"), "data.seed"s, "integer"s);
  EXPECT_MTL_ERROR(make("multi_fashion", "  normalize: maybe\n"), "data.normalize"s, "true, false, imagenet"s);
  Made m = make("multi_fashion", "  max_shfit: 2\n");
  EXPECT_MTL_ERROR(m.cfg.check_unused(), "max_shfit"s, "did you mean 'max_shift'"s);
}

TEST(MultiFashion, MissingRootNamesTheFileAndThePackage) {
  TempDir cache("mf_cache");
  Made m = make("multi_fashion", "  root: /nonexistent/fm\n" + small(cache.path()));
  EXPECT_MTL_ERROR(m.source->open(mtl::Split::kTrain), "/nonexistent/fm/train-images-idx3-ubyte.gz"s,
                   "apt-get install dataset-fashion-mnist"s);
}

TEST(MultiFashion, ResolvesTheCacheDirectory) {
  auto save = [](const char* name) {
    const char* v = std::getenv(name);
    return std::make_pair(v != nullptr, std::string(v ? v : ""));
  };
  auto mtl_dir = save("MTL_CACHE_DIR"), xdg = save("XDG_CACHE_HOME"), home = save("HOME");
  EXPECT_EQ(mtl::resolve_cache_dir("/given"), "/given");
  ::setenv("MTL_CACHE_DIR", "/m", 1);
  ::setenv("XDG_CACHE_HOME", "/x", 1);
  ::setenv("HOME", "/h", 1);
  EXPECT_EQ(mtl::resolve_cache_dir(""), "/m");
  ::unsetenv("MTL_CACHE_DIR");
  EXPECT_EQ(mtl::resolve_cache_dir(""), "/x/mtl");
  ::unsetenv("XDG_CACHE_HOME");
  EXPECT_EQ(mtl::resolve_cache_dir(""), "/h/.cache/mtl");
  auto restore = [](const char* name, const std::pair<bool, std::string>& v) {
    if (v.first) ::setenv(name, v.second.c_str(), 1);
    else ::unsetenv(name);
  };
  restore("MTL_CACHE_DIR", mtl_dir);
  restore("XDG_CACHE_HOME", xdg);
  restore("HOME", home);
}

TEST(MultiFashion, CacheNameCarriesEveryParameter) {
  mtl::MultiFashionOptions o;
  o.cache_dir = "/c";
  std::string a = mtl::multi_fashion_cache_prefix(o, mtl::Split::kTrain);
  EXPECT_EQ(a.rfind("/c/multi_fashion_v1_s0_n120000_shift4_train_r", 0), 0u) << a;
  EXPECT_NE(a, mtl::multi_fashion_cache_prefix(o, mtl::Split::kTest));
  for (int which = 0; which < 4; ++which) {
    mtl::MultiFashionOptions p = o;
    if (which == 0) p.seed = 1;
    if (which == 1) p.train_size = 10;
    if (which == 2) p.max_shift = 2;
    if (which == 3) p.root = "/elsewhere";
    EXPECT_NE(mtl::multi_fashion_cache_prefix(p, mtl::Split::kTrain), a) << which;
  }
}

TEST(MultiFashion, OpensBatchesOfTheRightShapeAndRange) {
  REQUIRE_FASHION_MNIST();
  TempDir cache("mf_cache");
  Made m = make("multi_fashion", small(cache.path()));
  auto train = m.source->open(mtl::Split::kTrain);
  auto test = m.source->open(mtl::Split::kTest);
  EXPECT_EQ(train->size(), 2000);
  EXPECT_EQ(test->size(), 500);
  std::vector<int64_t> idx(64);
  for (int64_t i = 0; i < 64; ++i) idx[i] = i * 31;
  mtl::Batch b = train->batch(idx);
  EXPECT_EQ(b.size, 64);
  const torch::Tensor& x = b.inputs.at("image");
  EXPECT_EQ(x.scalar_type(), torch::kFloat);
  EXPECT_EQ(x.sizes(), (std::vector<int64_t>{64, 1, 36, 36}));
  EXPECT_GE(x.min().item<float>(), -1.f);  // normalised by mean 0.5, std 0.5
  EXPECT_LE(x.max().item<float>(), 1.f);
  EXPECT_EQ(x.min().item<float>(), -1.f);  // the background
  for (const char* label : {"left", "right"}) {
    const torch::Tensor& y = b.targets.at(label);
    EXPECT_EQ(y.scalar_type(), torch::kLong);
    EXPECT_EQ(y.sizes(), (std::vector<int64_t>{64}));
    EXPECT_GE(y.min().item<int64_t>(), 0);
    EXPECT_LT(y.max().item<int64_t>(), 10);
  }
}

TEST(MultiFashion, LabelsDifferAndEveryItemIsUsedAsLeft) {
  REQUIRE_FASHION_MNIST();
  mtl::FashionMnist src = mtl::read_fashion_mnist(mtl_test::fashion_mnist_dir(), mtl::Split::kTest);
  ASSERT_EQ(src.images.sizes(), (std::vector<int64_t>{10000, 28, 28}));
  mtl::MultiFashionData d = mtl::build_multi_fashion(src, 20000, 4, 0, mtl::Split::kTest);
  EXPECT_EQ(d.images.sizes(), (std::vector<int64_t>{20000, 36, 36}));
  EXPECT_EQ(d.images.scalar_type(), torch::kByte);
  EXPECT_EQ(d.left.scalar_type(), torch::kByte);
  EXPECT_EQ(torch::ne(d.left, d.right).sum().item<int64_t>(), 20000);
  EXPECT_LT(d.left.max().item<int64_t>(), 10);
  EXPECT_LT(d.right.max().item<int64_t>(), 10);
  // Two passes over a permutation: each source item is "left" exactly twice.
  torch::Tensor counts = torch::bincount(d.provenance.select(1, 0), {}, 10000);
  EXPECT_EQ(counts.min().item<int64_t>(), 2);
  EXPECT_EQ(counts.max().item<int64_t>(), 2);
  // Labels are those of the source items.
  torch::Tensor src_labels = src.labels.to(torch::kLong);
  EXPECT_TRUE(torch::equal(d.left.to(torch::kLong), src_labels.index_select(0, d.provenance.select(1, 0))));
  EXPECT_TRUE(torch::equal(d.right.to(torch::kLong), src_labels.index_select(0, d.provenance.select(1, 1))));
  // Shifts cover [0, 4].
  torch::Tensor shifts = d.provenance.slice(1, 2, 6);
  EXPECT_EQ(shifts.min().item<int64_t>(), 0);
  EXPECT_EQ(shifts.max().item<int64_t>(), 4);
}

TEST(MultiFashion, PlacesLeftTopLeftAndRightBottomRightByMax) {
  REQUIRE_FASHION_MNIST();
  mtl::FashionMnist src = mtl::read_fashion_mnist(mtl_test::fashion_mnist_dir(), mtl::Split::kTest);
  // max_shift 0: left exactly at (0, 0), right exactly at (8, 8).
  mtl::MultiFashionData d0 = mtl::build_multi_fashion(src, 100, 0, 5, mtl::Split::kTest);
  EXPECT_EQ(d0.provenance.slice(1, 2, 6).abs().sum().item<int64_t>(), 0);
  for (int64_t k = 0; k < 100; ++k) {
    int64_t l = d0.provenance[k][0].item<int64_t>(), r = d0.provenance[k][1].item<int64_t>();
    torch::Tensor expected = torch::max(place(src.images[l], 0, 0), place(src.images[r], 8, 8));
    ASSERT_TRUE(torch::equal(d0.images[k], expected)) << "example " << k;
  }
  // max_shift 4: left at (dy, dx), right at (8 - dy', 8 - dx').
  mtl::MultiFashionData d4 = mtl::build_multi_fashion(src, 100, 4, 5, mtl::Split::kTest);
  for (int64_t k = 0; k < 100; ++k) {
    std::vector<int64_t> p(d4.provenance[k].data_ptr<int64_t>(), d4.provenance[k].data_ptr<int64_t>() + 6);
    torch::Tensor expected =
        torch::max(place(src.images[p[0]], p[2], p[3]), place(src.images[p[1]], 8 - p[4], 8 - p[5]));
    ASSERT_TRUE(torch::equal(d4.images[k], expected)) << "example " << k;
  }
}

// An independent implementation of the scheme documented in multi_fashion.h must pick the same items
// and shifts: the documentation is the specification.
TEST(MultiFashion, FollowsTheDocumentedScheme) {
  REQUIRE_FASHION_MNIST();
  mtl::FashionMnist src = mtl::read_fashion_mnist(mtl_test::fashion_mnist_dir(), mtl::Split::kTest);
  const int64_t seed = (int64_t(1) << 33) + 12345, size = 25000, max_shift = 3;
  mtl::MultiFashionData d = mtl::build_multi_fashion(src, size, max_shift, seed, mtl::Split::kTest);

  torch::Tensor labels = src.labels.to(torch::kLong);
  std::vector<int64_t> cls(labels.data_ptr<int64_t>(), labels.data_ptr<int64_t>() + labels.numel());
  const uint64_t m = cls.size();
  std::seed_seq seq{uint32_t(seed & 0xFFFFFFFF), uint32_t(uint64_t(seed) >> 32), uint32_t(1)};
  std::mt19937_64 rng(seq);
  auto uniform = [&](uint64_t n) {
    const uint64_t skip = (0 - n) % n;  // 2^64 mod n
    for (;;) {
      uint64_t x = rng();
      if (x >= skip) return x % n;
    }
  };
  std::vector<std::vector<int64_t>> others(10);
  for (uint64_t i = 0; i < m; ++i)
    for (int64_t c = 0; c < 10; ++c)
      if (cls[i] != c) others[c].push_back(i);
  std::vector<int64_t> perm(m);
  for (uint64_t i = 0; i < m; ++i) perm[i] = i;
  for (int64_t k = 0; k < size; ++k) {
    if (k % m == 0)
      for (uint64_t i = m - 1; i > 0; --i) std::swap(perm[i], perm[uniform(i + 1)]);
    int64_t l = perm[k % m];
    int64_t r = others[cls[l]][uniform(others[cls[l]].size())];
    int64_t dy = uniform(max_shift + 1), dx = uniform(max_shift + 1);
    int64_t dy2 = uniform(max_shift + 1), dx2 = uniform(max_shift + 1);
    torch::Tensor want = torch::tensor({l, r, dy, dx, dy2, dx2}, torch::kLong);
    ASSERT_TRUE(torch::equal(d.provenance[k], want)) << "example " << k << ": " << d.provenance[k];
  }
}

TEST(MultiFashion, SameSeedSameDataOtherSeedOtherData) {
  REQUIRE_FASHION_MNIST();
  mtl::FashionMnist src = mtl::read_fashion_mnist(mtl_test::fashion_mnist_dir(), mtl::Split::kTest);
  mtl::MultiFashionData a = mtl::build_multi_fashion(src, 500, 4, 7, mtl::Split::kTest);
  mtl::MultiFashionData b = mtl::build_multi_fashion(src, 500, 4, 7, mtl::Split::kTest);
  mtl::MultiFashionData c = mtl::build_multi_fashion(src, 500, 4, 8, mtl::Split::kTest);
  mtl::MultiFashionData t = mtl::build_multi_fashion(src, 500, 4, 7, mtl::Split::kTrain);
  EXPECT_TRUE(torch::equal(a.images, b.images));
  EXPECT_TRUE(torch::equal(a.left, b.left));
  EXPECT_TRUE(torch::equal(a.right, b.right));
  EXPECT_FALSE(torch::equal(a.images, c.images));
  EXPECT_FALSE(torch::equal(a.left, c.left));
  EXPECT_FALSE(torch::equal(a.provenance, t.provenance));  // the splits draw from separate streams
}

TEST(MultiFashion, SecondOpenReadsTheCache) {
  REQUIRE_FASHION_MNIST();
  TempDir cache("mf_cache");
  mtl::MultiFashionOptions o;
  o.cache_dir = cache.path();
  o.train_size = 2000;
  o.test_size = 500;
  bool from_cache = true;
  mtl::MultiFashionData first = mtl::load_multi_fashion(o, mtl::Split::kTest, &from_cache);
  EXPECT_FALSE(from_cache);
  std::string prefix = mtl::multi_fashion_cache_prefix(o, mtl::Split::kTest);
  for (const char* suffix : {"-images-idx3-ubyte", "-left-labels-idx1-ubyte", "-right-labels-idx1-ubyte"})
    EXPECT_TRUE(std::filesystem::exists(prefix + suffix)) << prefix + suffix;
  mtl::MultiFashionData second = mtl::load_multi_fashion(o, mtl::Split::kTest, &from_cache);
  EXPECT_TRUE(from_cache);
  EXPECT_TRUE(torch::equal(first.images, second.images));
  EXPECT_TRUE(torch::equal(first.left, second.left));
  EXPECT_TRUE(torch::equal(first.right, second.right));

  // Through the source: the cached split gives the same batches.
  Made m = make("multi_fashion", small(cache.path()));
  auto ds = m.source->open(mtl::Split::kTest);
  mtl::Batch b = ds->batch({0, 1, 2});
  EXPECT_TRUE(torch::equal(b.targets.at("left"), first.left.slice(0, 0, 3).to(torch::kLong)));
  torch::Tensor pixels = first.images.slice(0, 0, 3).unsqueeze(1).to(torch::kFloat).div(255).sub(0.5).div(0.5);
  EXPECT_TRUE(torch::allclose(b.inputs.at("image"), pixels));
}

TEST(MultiFashion, CorruptCacheFileIsNamed) {
  REQUIRE_FASHION_MNIST();
  TempDir cache("mf_cache");
  mtl::MultiFashionOptions o;
  o.cache_dir = cache.path();
  o.test_size = 300;
  mtl::load_multi_fashion(o, mtl::Split::kTest);
  std::string images = mtl::multi_fashion_cache_prefix(o, mtl::Split::kTest) + "-images-idx3-ubyte";
  std::string bytes = mtl_test::read_file(images);
  mtl_test::write_file(images, bytes.substr(0, bytes.size() / 2));
  EXPECT_MTL_ERROR(mtl::load_multi_fashion(o, mtl::Split::kTest), images, "delete it to rebuild"s);
  // A well-formed file of the wrong shape is caught too.
  mtl::write_idx(images, torch::zeros({300, 28, 28}, torch::kByte));
  EXPECT_MTL_ERROR(mtl::load_multi_fashion(o, mtl::Split::kTest), images, "[300, 36, 36]"s);
}

TEST(FashionMnist, OpensPlainFashionMnistWithLimits) {
  REQUIRE_FASHION_MNIST();
  Made m = make("fashion_mnist", "  train_size: 300\n  normalize: false\n");
  EXPECT_NO_THROW(m.cfg.check_unused());
  mtl::DatasetSchema s = m.source->schema();
  EXPECT_EQ(s.inputs[0].shape, (std::vector<int64_t>{1, 28, 28}));
  EXPECT_EQ(s.label_names(), (std::vector<std::string>{"class"}));
  auto train = m.source->open(mtl::Split::kTrain);
  auto test = m.source->open(mtl::Split::kTest);
  EXPECT_EQ(train->size(), 300);
  EXPECT_EQ(test->size(), 10000);
  mtl::Batch b = train->batch({0, 299});
  EXPECT_EQ(b.inputs.at("image").sizes(), (std::vector<int64_t>{2, 1, 28, 28}));
  EXPECT_GE(b.inputs.at("image").min().item<float>(), 0.f);  // not normalised: [0, 1]
  EXPECT_LE(b.inputs.at("image").max().item<float>(), 1.f);
  mtl::FashionMnist raw = mtl::read_fashion_mnist(mtl_test::fashion_mnist_dir(), mtl::Split::kTrain);
  EXPECT_EQ(b.targets.at("class")[1].item<int64_t>(), raw.labels[299].item<int64_t>());

  Made big = make("fashion_mnist", "  test_size: 10001\n");
  EXPECT_MTL_ERROR(big.source->open(mtl::Split::kTest), "test_size 10001"s, "10000 examples"s);
}

// Full-size timing (run with --gtest_also_run_disabled_tests): build 120k, write the cache, reload it.
TEST(MultiFashion, DISABLED_FullSizeTiming) {
  REQUIRE_FASHION_MNIST();
  TempDir cache("mf_timing");
  mtl::MultiFashionOptions o;
  o.cache_dir = cache.path();
  using clock = std::chrono::steady_clock;
  auto secs = [](clock::time_point a, clock::time_point b) { return std::chrono::duration<double>(b - a).count(); };
  auto t0 = clock::now();
  mtl::FashionMnist src = mtl::read_fashion_mnist(o.root, mtl::Split::kTrain);
  auto t1 = clock::now();
  mtl::MultiFashionData built = mtl::build_multi_fashion(src, o.train_size, o.max_shift, o.seed, mtl::Split::kTrain);
  auto t2 = clock::now();
  bool from_cache = true;
  mtl::load_multi_fashion(o, mtl::Split::kTrain, &from_cache);  // read + build + write cache
  auto t3 = clock::now();
  EXPECT_FALSE(from_cache);
  mtl::MultiFashionData cached = mtl::load_multi_fashion(o, mtl::Split::kTrain, &from_cache);
  auto t4 = clock::now();
  EXPECT_TRUE(from_cache);
  EXPECT_TRUE(torch::equal(built.images, cached.images));
  std::printf("read Fashion-MNIST train: %.3f s\nbuild 120k: %.3f s\nfirst load (read+build+write cache): %.3f s\n"
              "load from cache: %.3f s\n",
              secs(t0, t1), secs(t1, t2), secs(t2, t3), secs(t3, t4));
}

TEST(MultiFashion, DenseSchemaAddsPixelLabels) {
  Made m = make("multi_fashion", "  root: /nonexistent\n  dense: true\n");
  mtl::DatasetSchema s = m.source->schema();
  EXPECT_EQ(s.label_names(), (std::vector<std::string>{"left", "right", "segment", "left_pixels"}));
  EXPECT_EQ(s.label("segment")->kind, mtl::LabelKind::kPixelClass);
  EXPECT_EQ(s.label("segment")->size, 4);
  EXPECT_EQ(s.label("segment")->classes, (std::vector<std::string>{"background", "left", "right", "overlap"}));
  EXPECT_EQ(s.label("segment")->shape, (std::vector<int64_t>{36, 36}));
  EXPECT_EQ(s.label("left_pixels")->kind, mtl::LabelKind::kPixelReal);
  EXPECT_EQ(s.label("left_pixels")->shape, (std::vector<int64_t>{36, 36}));
  EXPECT_THROW(make("multi_fashion", "  dense: 3\n"), mtl::Error);
}

// The dense labels against the items placed by tensor slicing (place()), independently of the builder's loop:
// bit 1 of the segment is the left item's pixels >= kItemPixel, bit 2 the right item's, left_pixels is the left
// item alone, and the composite is max(left_pixels, right item).
TEST(MultiFashion, DenseLabelsFollowTheItems) {
  REQUIRE_FASHION_MNIST();
  TempDir cache("mf_dense");
  Made m = make("multi_fashion", small(cache.path()) + "  dense: true\n");
  auto ds = m.source->open(mtl::Split::kTest);
  mtl::FashionMnist src = mtl::read_fashion_mnist(mtl_test::fashion_mnist_dir(), mtl::Split::kTest);
  mtl::MultiFashionData d = mtl::build_multi_fashion(src, 500, 4, 0, mtl::Split::kTest);
  std::vector<int64_t> rows(60);
  for (int64_t i = 0; i < 60; ++i) rows[i] = i * 8;
  mtl::Batch b = ds->batch(rows);
  ASSERT_EQ(b.targets.at("segment").scalar_type(), at::kLong);
  ASSERT_EQ(b.targets.at("segment").sizes(), (std::vector<int64_t>{60, 36, 36}));
  ASSERT_EQ(b.targets.at("left_pixels").scalar_type(), at::kFloat);
  int64_t hidden = 0;
  for (int64_t i = 0; i < 60; ++i) {
    const int64_t k = rows[i];
    std::vector<int64_t> p(d.provenance[k].data_ptr<int64_t>(), d.provenance[k].data_ptr<int64_t>() + 6);
    torch::Tensor left = place(src.images[p[0]], p[2], p[3]);
    torch::Tensor right = place(src.images[p[1]], 8 - p[4], 8 - p[5]);
    torch::Tensor seg = (left >= mtl::kItemPixel).to(at::kLong) + 2 * (right >= mtl::kItemPixel).to(at::kLong);
    ASSERT_TRUE(torch::equal(b.targets.at("segment")[i], seg)) << "example " << k;
    ASSERT_TRUE(torch::allclose(b.targets.at("left_pixels")[i], left.to(at::kFloat) / 255.0)) << "example " << k;
    ASSERT_TRUE(torch::equal(d.images[k], torch::max(left, right)));
    hidden += (right > left).logical_and(left > 0).sum().item<int64_t>();
  }
  EXPECT_GT(hidden, 0);  // the composite hides some of the left item: left_pixels is not the image
  // The class labels are the same as without `dense` (the cached split).
  Made plain = make("multi_fashion", small(cache.path()));
  mtl::Batch c = plain.source->open(mtl::Split::kTest)->batch(rows);
  EXPECT_TRUE(torch::equal(b.targets.at("left"), c.targets.at("left")));
  EXPECT_TRUE(torch::equal(b.inputs.at("image"), c.inputs.at("image")));
}
