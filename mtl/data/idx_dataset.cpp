#include "mtl/data/idx_dataset.h"

#include <algorithm>
#include <set>

#include "mtl/config/config_node.h"
#include "mtl/config/option_check.h"
#include "mtl/core/error.h"
#include "mtl/core/text.h"
#include "mtl/data/idx.h"
#include "mtl/data/image_transform.h"
#include "mtl/data/tensor_dataset.h"

namespace mtl {
namespace {

bool is_integer(at::ScalarType t) {
  return t == at::kByte || t == at::kChar || t == at::kShort || t == at::kInt || t == at::kLong;
}
bool is_float(at::ScalarType t) { return t == at::kFloat || t == at::kDouble; }

// Per-example image shape {C,H,W} of an images file header; [N,H,W] files have one channel.
std::vector<int64_t> example_shape(const IdxHeader& h, const std::string& path) {
  if (h.dtype != at::kByte && !is_float(h.dtype))
    throw Error(path, "expected uint8 or float images, got " + std::string(c10::toString(h.dtype)));
  if (h.shape.size() == 3) return {1, h.shape[1], h.shape[2]};
  if (h.shape.size() == 4) return {h.shape[1], h.shape[2], h.shape[3]};
  throw Error(path, "expected images [N, H, W] or [N, C, H, W], got shape " + shape_text(h.shape));
}

IdxSplitFiles parse_split(const ConfigNode& node, const std::string& key) {
  node.check(node.has(key), key,
             "missing required key '" + key + "' (a map: {images: path, labels: {name: path, ...}})");
  ConfigNode s = node.child(key);
  IdxSplitFiles f;
  f.images = s.require<std::string>("images");
  std::vector<std::string> names = s.keys("labels");
  s.check(!names.empty(), "labels", "expected at least one label file: labels: {name: path, ...}");
  ConfigNode labels = s.child("labels");
  for (const auto& name : names) f.labels.emplace_back(name, labels.require<std::string>(name));
  return f;
}

std::vector<std::string> label_names(const IdxSplitFiles& f) {
  std::vector<std::string> out;
  for (const auto& kv : f.labels) out.push_back(kv.first);
  return out;
}

}  // namespace

IdxOptions IdxOptions::from_config(const ConfigNode& node) {
  IdxOptions o;
  o.train = parse_split(node, "train");
  o.test = parse_split(node, "test");
  std::vector<std::string> train_names = label_names(o.train);
  std::vector<std::string> test_names = label_names(o.test);
  node.child("test").check(std::set<std::string>(train_names.begin(), train_names.end()) ==
                               std::set<std::string>(test_names.begin(), test_names.end()),
                           "labels",
                           "expected the same labels as train (" + join(train_names) + "), got " + join(test_names));

  if (node.has("num_classes")) {
    ConfigNode nc = node.child("num_classes");
    for (const auto& name : node.keys("num_classes")) {
      bool known = std::find(train_names.begin(), train_names.end(), name) != train_names.end();
      nc.check(known, name, "no label '" + name + "' in train.labels" + did_you_mean(name, train_names) +
                                "; labels: " + join(train_names));
      o.num_classes[name] = positive<int64_t>(nc, name, 1);
    }
  }
  o.transform = image_transform_from_config(node, 0);
  return o;
}

void IdxOptions::validate() const {
  for (const auto* split : {&train, &test}) {
    const std::string key = split == &train ? "train" : "test";
    check(!split->images.empty(), key + ".images", "expected the path of the images file");
    check(!split->labels.empty(), key + ".labels", "expected at least one label file: {name, path}");
    for (const auto& [name, path] : split->labels)
      check(!name.empty() && !path.empty(), key + ".labels", "expected a label name and its file");
  }
  std::vector<std::string> train_names = label_names(train), test_names = label_names(test);
  check(std::set<std::string>(train_names.begin(), train_names.end()) ==
            std::set<std::string>(test_names.begin(), test_names.end()),
        "test.labels", "expected the same labels as train (" + join(train_names) + "), got " + join(test_names));
  for (const auto& [name, classes] : num_classes) {
    check(std::find(train_names.begin(), train_names.end(), name) != train_names.end(), "num_classes." + name,
          "no label '" + name + "' in train.labels; labels: " + join(train_names));
    check(classes > 0, "num_classes." + name, "expected a positive number, got " + std::to_string(classes));
  }
}

IdxSource::IdxSource(IdxOptions options) : options_(std::move(options)) {
  validate_options("IdxOptions", [&] { options_.validate(); });
}

DatasetSchema IdxSource::schema() const {
  std::call_once(schema_once_, [this] {
    DatasetSchema s;
    const std::string& images = options_.train.images;
    const std::vector<int64_t> stored = example_shape(read_idx_header(images), images);
    s.inputs.push_back(InputInfo{"image", options_.transform.output_shape(stored)});
    for (const auto& [name, path] : options_.train.labels) {
      IdxHeader h = read_idx_header(path);
      LabelInfo info;
      info.name = name;
      auto given = options_.num_classes.find(name);
      if (is_integer(h.dtype)) {
        if (h.shape.size() != 1)
          throw Error(path, "expected class labels [N] (integers, one dimension), got shape " + shape_text(h.shape));
        info.kind = LabelKind::kClass;
        if (given != options_.num_classes.end()) {
          info.size = given->second;
        } else {
          at::Tensor y = read_idx(path);
          if (y.numel() == 0) throw Error(path, "no labels to count the classes from; set data.num_classes." + name);
          info.size = y.max().item<int64_t>() + 1;
          if (info.size <= 0) throw Error(path, "expected class labels >= 0");
        }
      } else if (is_float(h.dtype) && (h.shape.size() == 1 || h.shape.size() == 2)) {
        if (given != options_.num_classes.end())
          throw Error(path, "num_classes is set for label '" + name + "', but the file holds real values (" +
                                c10::toString(h.dtype) + ")");
        info.kind = LabelKind::kReal;
        info.size = h.shape.size() == 1 ? 1 : h.shape[1];
      } else {
        throw Error(path, "expected integer class labels [N] or float values [N] or [N, K], got " +
                              std::string(c10::toString(h.dtype)) + " " + shape_text(h.shape));
      }
      s.labels.push_back(info);
    }
    schema_ = s;
  });
  return schema_;
}

std::shared_ptr<Dataset> IdxSource::open(Split split) const {
  const DatasetSchema s = schema();
  const IdxSplitFiles& f = split == Split::kTrain ? options_.train : options_.test;

  at::Tensor images = read_idx(f.images);
  // The model is built from the train file's schema: the test images must look the same.
  const bool want_u8 = read_idx_header(options_.train.images).dtype == at::kByte;
  IdxHeader h{images.scalar_type(), images.sizes().vec()};
  const std::vector<int64_t> stored = example_shape(read_idx_header(options_.train.images), options_.train.images);
  if (example_shape(h, f.images) != stored || (images.scalar_type() == at::kByte) != want_u8)
    throw Error(f.images, std::string("expected ") + (want_u8 ? "uint8" : "float") + " images [N] + " +
                              shape_text(stored) + " like the train file " + options_.train.images +
                              ", got " + c10::toString(images.scalar_type()) + " " + shape_text(images.sizes()));
  if (images.dim() == 3) images = images.unsqueeze(1);
  const int64_t n = images.size(0);

  TensorMap labels;
  for (const LabelInfo& info : s.labels) {
    std::string path;
    for (const auto& kv : f.labels)
      if (kv.first == info.name) path = kv.second;
    at::Tensor y = read_idx(path);
    if (y.size(0) != n)
      throw Error(path, "holds " + std::to_string(y.size(0)) + " labels, but " + f.images + " holds " +
                            std::to_string(n) + " images");
    if (info.kind == LabelKind::kClass) {
      if (!is_integer(y.scalar_type()) || y.dim() != 1)
        throw Error(path, "expected integer class labels [N] like the train file, got " +
                              std::string(c10::toString(y.scalar_type())) + " " + shape_text(y.sizes()));
      y = y.to(at::kLong);
      at::Tensor bad = ((y < 0) | (y >= info.size)).nonzero();
      if (bad.numel() > 0) {
        int64_t i = bad[0][0].item<int64_t>();
        std::string hint = options_.num_classes.count(info.name)
                               ? ""
                               : " (counted from the train labels; set data.num_classes." + info.name + ")";
        throw Error(path, "example " + std::to_string(i) + " has class " + std::to_string(y[i].item<int64_t>()) +
                              ", expected a class in [0, " + std::to_string(info.size) + ")" + hint);
      }
    } else {
      bool ok = is_float(y.scalar_type()) &&
                ((info.size == 1 && y.dim() == 1) || (y.dim() == 2 && y.size(1) == info.size));
      if (!ok)
        throw Error(path, "expected float values like the train file (" + std::to_string(info.size) +
                              " per example), got " + std::string(c10::toString(y.scalar_type())) + " " +
                              shape_text(y.sizes()));
    }
    labels[info.name] = y;
  }
  return std::make_shared<TensorDataset>(s, images, std::move(labels), options_.transform, f.images);
}

std::shared_ptr<DatasetSource> make_idx_source(const ConfigNode& node) {
  return std::make_shared<IdxSource>(IdxOptions::from_config(node));
}

}  // namespace mtl
