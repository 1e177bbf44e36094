#include "mtl/data/text/token_dataset.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "mtl/core/error.h"
#include "mtl/data/text/utf8.h"
#include "mtl/io/atomic_file.h"

namespace mtl {

void TokenSequences::append(const std::vector<int64_t>& example) {
  for (int64_t id : example) {
    TORCH_CHECK(id >= 0 && id <= INT32_MAX, "token id out of int32 range: ", id);
    ids.push_back(static_cast<int32_t>(id));
  }
  offsets.push_back(static_cast<int64_t>(ids.size()));
}

TokenDataset::TokenDataset(std::string input, TokenSequences tokens, std::vector<TokenLabelColumn> labels)
    : input_(std::move(input)), tokens_(std::move(tokens)), labels_(std::move(labels)) {
  for (const auto& l : labels_) {
    const size_t n = static_cast<size_t>(tokens_.size());
    switch (l.kind) {
      case LabelKind::kClass: TORCH_CHECK(l.classes.size() == n, "label ", l.name, ": one class per example"); break;
      case LabelKind::kReal: TORCH_CHECK(l.reals.size() == n, "label ", l.name, ": one value per example"); break;
      case LabelKind::kMultiLabel:
        TORCH_CHECK(l.multi_offsets.size() == n + 1, "label ", l.name, ": offsets per example");
        break;
      case LabelKind::kTokenClass:
        TORCH_CHECK(l.tags.size() == tokens_.ids.size(), "label ", l.name, ": one tag per token");
        break;
      case LabelKind::kPixelClass:
      case LabelKind::kPixelReal: TORCH_CHECK(false, "label ", l.name, ": a text dataset has no per-pixel labels");
    }
  }
}

std::vector<int64_t> TokenDataset::lengths() const {
  std::vector<int64_t> out(static_cast<size_t>(size()));
  for (int64_t i = 0; i < size(); ++i) out[i] = tokens_.offsets[i + 1] - tokens_.offsets[i] + 1;
  return out;
}

Batch TokenDataset::batch(const std::vector<int64_t>& indices) const {
  const int64_t b = static_cast<int64_t>(indices.size());
  int64_t len = 1;
  for (int64_t i : indices) {
    TORCH_CHECK(i >= 0 && i < size(), "example index ", i, " out of range [0, ", size(), ")");
    len = std::max(len, tokens_.offsets[i + 1] - tokens_.offsets[i] + 1);
  }
  Batch batch;
  batch.size = b;
  at::Tensor ids = at::full({b, len}, kPadTokenId, at::kLong);
  int64_t* pid = ids.data_ptr<int64_t>();
  for (int64_t r = 0; r < b; ++r) {
    const int64_t i = indices[r];
    int64_t* row = pid + r * len;
    row[0] = kClsTokenId;
    for (int64_t k = tokens_.offsets[i]; k < tokens_.offsets[i + 1]; ++k) row[1 + k - tokens_.offsets[i]] = tokens_.ids[k];
  }
  batch.inputs[input_] = ids;

  for (const auto& l : labels_) {
    at::Tensor t;
    switch (l.kind) {
      case LabelKind::kClass: {
        t = at::empty({b}, at::kLong);
        for (int64_t r = 0; r < b; ++r) t.data_ptr<int64_t>()[r] = l.classes[indices[r]];
        break;
      }
      case LabelKind::kReal: {
        t = at::empty({b}, at::kFloat);
        for (int64_t r = 0; r < b; ++r) t.data_ptr<float>()[r] = l.reals[indices[r]];
        break;
      }
      case LabelKind::kMultiLabel: {
        t = at::zeros({b, l.size}, at::kFloat);
        float* p = t.data_ptr<float>();
        for (int64_t r = 0; r < b; ++r)
          for (int64_t k = l.multi_offsets[indices[r]]; k < l.multi_offsets[indices[r] + 1]; ++k)
            p[r * l.size + l.multi[k]] = 1.0f;
        break;
      }
      case LabelKind::kTokenClass: {
        t = at::full({b, len}, kIgnoreIndex, at::kLong);
        int64_t* p = t.data_ptr<int64_t>();
        for (int64_t r = 0; r < b; ++r) {
          const int64_t i = indices[r];
          for (int64_t k = tokens_.offsets[i]; k < tokens_.offsets[i + 1]; ++k)
            p[r * len + 1 + k - tokens_.offsets[i]] = l.tags[k];
        }
        break;
      }
      case LabelKind::kPixelClass:
      case LabelKind::kPixelReal: break;  // the constructor refuses them
    }
    batch.targets[l.name] = t;
  }
  return batch;
}

namespace text_data {

std::vector<std::string> split_on(const std::string& line, char sep) {
  std::vector<std::string> out;
  size_t b = 0;
  for (;;) {
    size_t e = line.find(sep, b);
    out.push_back(line.substr(b, e == std::string::npos ? std::string::npos : e - b));
    if (e == std::string::npos) return out;
    b = e + 1;
  }
}

void for_each_line(const std::string& path, const std::function<void(int64_t, const std::string&)>& visit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path, std::string("cannot open the data file: ") + std::strerror(errno));
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (n == 1 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t bad = find_invalid_utf8(line);
    if (bad != std::string::npos)
      throw Error(path + ":" + std::to_string(n), "invalid UTF-8 at byte " + std::to_string(bad) + " of the line");
    visit(n, line);
  }
  if (in.bad()) throw Error(path, "read error");
}

std::vector<std::string> sorted_classes(const std::set<std::string>& values) {
  std::vector<std::pair<long long, std::string>> numeric;
  for (const auto& v : values) {
    char* end = nullptr;
    errno = 0;
    long long x = v.empty() ? 0 : std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || errno != 0 || end != v.c_str() + v.size()) return {values.begin(), values.end()};
    numeric.emplace_back(x, v);
  }
  std::sort(numeric.begin(), numeric.end());
  std::vector<std::string> out;
  for (auto& p : numeric) out.push_back(p.second);
  return out;
}

std::string list_classes(const std::vector<std::string>& names) {
  const size_t limit = 20;
  std::vector<std::string> shown(names.begin(), names.begin() + std::min(limit, names.size()));
  std::string s = join(shown);
  if (names.size() > limit) s += ", ... (" + std::to_string(names.size()) + " in all)";
  return s;
}

void unknown_class(const std::string& path, int64_t line, const std::string& label, const std::string& value,
                   const std::vector<std::string>& classes) {
  throw Error(path + ":" + std::to_string(line),
              "label '" + label + "' value '" + value + "' at line " + std::to_string(line) + " is not one of the " +
                  std::to_string(classes.size()) + " training classes (" + list_classes(classes) + ")" +
                  did_you_mean(value, classes));
}

void write_labels_json(const std::string& dir, const std::vector<LabelInfo>& labels) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& l : labels) {
    if (l.kind == LabelKind::kReal) continue;
    out[l.name] = {{"kind", to_string(l.kind)}, {"classes", l.classes}};
  }
  ensure_writable_dir(dir);
  write_file_atomic(dir + "/labels.json", nlohmann::json{{"labels", out}}.dump(2) + "\n");
}

std::map<std::string, std::vector<std::string>> read_labels_json(const std::string& dir) {
  const std::string path = dir + "/labels.json";
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path, std::string("cannot open the label classes of the run: ") + std::strerror(errno));
  std::map<std::string, std::vector<std::string>> out;
  try {
    nlohmann::json j = nlohmann::json::parse(in);
    for (auto& [name, l] : j.at("labels").items()) out[name] = l.at("classes").get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(path, std::string("corrupt labels file: ") + e.what());
  }
  return out;
}

}  // namespace text_data
}  // namespace mtl
