#include "mtl/data/text/text_dataset.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>

#include "mtl/config/config_node.h"
#include "mtl/config/option_check.h"
#include "mtl/core/error.h"
#include "mtl/data/csv_dataset.h"
#include "mtl/data/text/token_dataset.h"
#include "mtl/data/text/tokenizer.h"

namespace mtl {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

// One example as read from a file; per label only the member of its kind is filled.
struct Record {
  int64_t line = 0;
  std::string text;
  std::vector<std::string> cls;
  std::vector<double> real;
  std::vector<std::vector<std::string>> multi;
};

std::string json_type(const nlohmann::json& v) { return v.type_name(); }

// What nlohmann says, without its "[json.exception.parse_error.101] " prefix.
std::string json_message(const std::exception& e) {
  std::string m = e.what();
  size_t p = m.find("] ");
  return p != std::string::npos && m.rfind("[json.exception", 0) == 0 ? m.substr(p + 2) : m;
}

std::string label_ref(const TextLabelSpec& l) {
  return "label '" + l.name + "'" + (l.field != l.name ? " (field '" + l.field + "')" : "");
}

std::string at_line(const std::string& path, int64_t line) { return path + ":" + std::to_string(line); }

// JSON Lines: one object per line; returns the number of records.
int64_t read_jsonl_records(const TextOptions& o, const std::string& path, Record& r,
                           const std::function<void(const Record&)>& visit) {
  const size_t nl = o.labels.size();
  int64_t count = 0;
  auto at = [&](int64_t line) { return at_line(path, line); };
  text_data::for_each_line(path, [&](int64_t line, const std::string& text) {
    if (trim(text).empty()) return;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      throw Error(at(line), "malformed JSON line: " + json_message(e));
    }
    if (!j.is_object()) throw Error(at(line), "expected a JSON object per line, got " + json_type(j));
    auto t = j.find(o.text_field);
    if (t == j.end()) throw Error(at(line), "no text field '" + o.text_field + "'");
    if (!t->is_string()) throw Error(at(line), "text field '" + o.text_field + "': expected a string, got " + json_type(*t));
    r.line = line;
    r.text = t->get<std::string>();
    for (size_t k = 0; k < nl; ++k) {
      const TextLabelSpec& l = o.labels[k];
      auto v = j.find(l.field);
      if (v == j.end()) throw Error(at(line), label_ref(l) + ": no field '" + l.field + "' in this example");
      auto scalar_class = [&](const nlohmann::json& x, std::string& out) {
        if (x.is_string()) out = x.get<std::string>();
        else if (x.is_number_integer()) out = x.dump();
        else return false;
        return !out.empty();
      };
      switch (l.kind) {
        case LabelKind::kClass:
          if (!scalar_class(*v, r.cls[k]))
            throw Error(at(line), label_ref(l) + ": expected a class (a non-empty string or an integer), got " +
                                      (v->is_string() ? std::string("an empty string") : json_type(*v)));
          break;
        case LabelKind::kReal:
          if (!v->is_number() || !std::isfinite(v->get<double>()))
            throw Error(at(line), label_ref(l) + ": expected a number, got " + v->dump());
          r.real[k] = v->get<double>();
          break;
        case LabelKind::kMultiLabel: {
          if (!v->is_array()) throw Error(at(line), label_ref(l) + ": expected a list of labels, got " + json_type(*v));
          r.multi[k].clear();
          for (const auto& x : *v) {
            std::string s;
            if (!scalar_class(x, s))
              throw Error(at(line), label_ref(l) + ": expected a list of strings, got an element " + x.dump());
            r.multi[k].push_back(s);
          }
          break;
        }
        default: break;
      }
    }
    ++count;
    visit(r);
  });
  return count;
}

// Label k's value `v` from a CSV/TSV field into `r` (multi-label values are separated by '|').
void read_delimited_label(const TextLabelSpec& l, const std::string& v, const std::string& where, size_t k, Record& r) {
  switch (l.kind) {
    case LabelKind::kClass:
      if (v.empty()) throw Error(where, label_ref(l) + ": empty class value");
      r.cls[k] = v;
      break;
    case LabelKind::kReal: {
      char* end = nullptr;
      errno = 0;
      double x = std::strtod(v.c_str(), &end);
      if (v.empty() || end != v.c_str() + v.size() || !std::isfinite(x))
        throw Error(where, label_ref(l) + ": expected a number, got '" + v + "'");
      r.real[k] = x;
      break;
    }
    case LabelKind::kMultiLabel:
      r.multi[k].clear();
      for (const std::string& part : text_data::split_on(v, '|'))
        if (!trim(part).empty()) r.multi[k].push_back(trim(part));
      break;
    default: break;
  }
}

// CSV or TSV with a header row; returns the number of records.
int64_t read_delimited_records(const TextOptions& o, const std::string& path, TextFormat format, Record& r,
                               const std::function<void(const Record&)>& visit) {
  const size_t nl = o.labels.size();
  int64_t count = 0;
  auto at = [&](int64_t line) { return at_line(path, line); };
  const bool csv = format == TextFormat::kCsv;
  std::vector<std::string> header;
  int64_t header_line = 0;
  size_t text_col = 0;
  std::vector<size_t> label_cols(nl);
  auto split = [&](const std::string& line, int64_t n) {
    return csv ? split_csv_line(line, ',', at(n)) : text_data::split_on(line, '\t');
  };
  text_data::for_each_line(path, [&](int64_t line, const std::string& text) {
    if (trim(text).empty()) return;
    std::vector<std::string> fields = split(text, line);
    if (header.empty()) {
      header = fields;
      header_line = line;
      std::map<std::string, size_t> index;
      for (size_t i = 0; i < header.size(); ++i) index.emplace(trim(header[i]), i);
      auto column = [&](const std::string& name, const std::string& role) {
        auto it = index.find(name);
        if (it == index.end())
          throw Error(at(header_line), "no column '" + name + "' (" + role + ") in the header" +
                                           did_you_mean(name, header) + "; columns: " + text_data::list_classes(header));
        return it->second;
      };
      text_col = column(o.text_field, "the text");
      for (size_t k = 0; k < nl; ++k) label_cols[k] = column(o.labels[k].field, "label '" + o.labels[k].name + "'");
      return;
    }
    if (fields.size() != header.size())
      throw Error(at(line), "expected " + std::to_string(header.size()) + " fields as in the header (line " +
                                std::to_string(header_line) + "), got " + std::to_string(fields.size()));
    r.line = line;
    r.text = fields[text_col];
    for (size_t k = 0; k < nl; ++k) read_delimited_label(o.labels[k], trim(fields[label_cols[k]]), at(line), k, r);
    ++count;
    visit(r);
  });
  return count;
}

// Streams the records of `path`; every input error is an mtl::Error at path:line.
void read_records(const TextOptions& o, const std::string& path, const std::function<void(const Record&)>& visit) {
  const TextFormat format = o.format_of(path);
  const size_t nl = o.labels.size();
  Record r;
  r.cls.resize(nl);
  r.real.resize(nl);
  r.multi.resize(nl);
  const int64_t count = format == TextFormat::kJsonl
                            ? read_jsonl_records(o, path, r, visit)
                            : read_delimited_records(o, path, format, r, visit);
  if (count == 0) throw Error(path, "no examples in the file (it is empty or has only a header)");
}

}  // namespace

TextFormat TextOptions::format_of(const std::string& path) const {
  std::string f = format;
  if (f == "auto") {
    if (ends_with(path, ".jsonl") || ends_with(path, ".json") || ends_with(path, ".ndjson")) f = "jsonl";
    else if (ends_with(path, ".csv")) f = "csv";
    else if (ends_with(path, ".tsv") || ends_with(path, ".tab")) f = "tsv";
    else
      throw Error(path, "cannot tell the data format from the file extension (.jsonl, .csv or .tsv); set format: jsonl|csv|tsv");
  }
  return f == "jsonl" ? TextFormat::kJsonl : f == "csv" ? TextFormat::kCsv : TextFormat::kTsv;
}

TextOptions TextOptions::from_config(const ConfigNode& node) {
  TextOptions o;
  o.train = node.require<std::string>("train");
  o.test = node.require<std::string>("test");
  o.format = node.choice("format", o.format, {"auto", "jsonl", "csv", "tsv"});
  if (o.format == "auto") {
    for (const char* key : {"train", "test"}) {
      const std::string path = key == std::string("train") ? o.train : o.test;
      try {
        (void)o.format_of(path);
      } catch (const Error& e) {
        node.fail(key, e.message());
      }
    }
  }
  o.text_field = node.get<std::string>("text", o.text_field);
  node.check(!o.text_field.empty(), "text", "expected the name of the text field");
  o.input = node.get<std::string>("input", o.input);
  node.check(!o.input.empty(), "input", "expected a non-empty input name");
  o.max_length = positive<int64_t>(node, "max_length", o.max_length);

  std::vector<std::string> names = node.keys("labels");
  node.check(!names.empty(), "labels",
             "expected at least one label: labels: {name: {field: f, kind: class|real|multilabel}}");
  ConfigNode labels = node.child("labels");
  for (const auto& name : names) {
    ConfigNode l = labels.child(name);
    TextLabelSpec spec;
    spec.name = name;
    spec.field = l.get<std::string>("field", name);
    l.check(spec.field != o.text_field, "field", "field '" + spec.field + "' is the text field");
    std::string kind = l.choice("kind", "class", {"class", "real", "multilabel"});
    spec.kind = kind == "class" ? LabelKind::kClass : kind == "real" ? LabelKind::kReal : LabelKind::kMultiLabel;
    if (spec.kind != LabelKind::kReal) {
      spec.classes = l.get<std::vector<std::string>>("classes", {});
      std::set<std::string> seen;
      for (const auto& c : spec.classes) {
        l.check(!c.empty(), "classes", "class names must not be empty");
        l.check(seen.insert(c).second, "classes", "class '" + c + "' is listed twice");
      }
      l.check(spec.classes.empty() || spec.kind == LabelKind::kMultiLabel || spec.classes.size() >= 2, "classes",
              "expected at least two classes");
    }
    o.labels.push_back(spec);
  }
  return o;
}

void TextOptions::validate() const {
  check(!train.empty(), "train", "expected the path of the training file");
  check(!test.empty(), "test", "expected the path of the test file");
  check_choice("format", format, {"auto", "jsonl", "csv", "tsv"});
  for (const std::string* path : {&train, &test}) {
    try {
      (void)format_of(*path);
    } catch (const Error& e) {
      throw Error("format", e.what());  // "path: cannot tell the data format ..."
    }
  }
  check(!text_field.empty(), "text", "expected the name of the text field");
  check(!input.empty(), "input", "expected a non-empty input name");
  check(max_length > 0, "max_length", "expected a positive number, got " + std::to_string(max_length));
  check(!labels.empty(), "labels", "expected at least one label: {name, field, kind (class|real|multilabel)}");
  for (const auto& l : labels) {
    const std::string key = "labels." + l.name;
    check(!l.name.empty() && !l.field.empty(), key, "expected a label name and its field");
    check(l.field != text_field, key + ".field", "field '" + l.field + "' is the text field");
    check(l.kind == LabelKind::kClass || l.kind == LabelKind::kReal || l.kind == LabelKind::kMultiLabel,
          key + ".kind", "expected class, real or multilabel");
    check(l.kind != LabelKind::kReal || l.classes.empty(), key + ".classes", "a real label has no classes");
    std::set<std::string> seen;
    for (const auto& c : l.classes) {
      check(!c.empty(), key + ".classes", "class names must not be empty");
      check(seen.insert(c).second, key + ".classes", "class '" + c + "' is listed twice");
    }
    check(l.classes.empty() || l.kind == LabelKind::kMultiLabel || l.classes.size() >= 2, key + ".classes",
          "expected at least two classes");
  }
}

namespace {

std::vector<std::pair<std::string, LabelKind>> label_kinds(const std::vector<TextLabelSpec>& labels) {
  std::vector<std::pair<std::string, LabelKind>> out;
  for (const auto& l : labels) out.emplace_back(l.name, l.kind);
  return out;
}

}  // namespace

TextSource::TextSource(TextOptions options)
    : TextSourceBase("text", options.input, options.max_length, label_kinds(options.labels)),
      options_(std::move(options)) {
  validate_options("TextOptions", [&] { options_.validate(); });
}

std::vector<std::vector<std::string>> TextSource::build_vocabularies() const {
  std::vector<std::vector<std::string>> out(options_.labels.size());
  std::vector<std::set<std::string>> seen(options_.labels.size());
  bool scan = false;
  for (size_t k = 0; k < options_.labels.size(); ++k) {
    const auto& l = options_.labels[k];
    out[k] = l.classes;
    if (l.kind != LabelKind::kReal && l.classes.empty()) scan = true;
  }
  if (!scan) return out;
  read_records(options_, options_.train, [&](const Record& r) {
    for (size_t k = 0; k < options_.labels.size(); ++k) {
      if (!options_.labels[k].classes.empty()) continue;
      if (options_.labels[k].kind == LabelKind::kClass) seen[k].insert(r.cls[k]);
      if (options_.labels[k].kind == LabelKind::kMultiLabel) seen[k].insert(r.multi[k].begin(), r.multi[k].end());
    }
  });
  for (size_t k = 0; k < options_.labels.size(); ++k) {
    const auto& l = options_.labels[k];
    if (l.kind == LabelKind::kReal || !l.classes.empty()) continue;
    out[k] = text_data::sorted_classes(seen[k]);
    if (out[k].empty())
      throw Error(options_.train, "label '" + l.name + "': no labels in the training split (every list is empty)");
  }
  return out;
}

void TextSource::for_each_training_text(const std::function<void(const std::string&)>& visit) const {
  read_records(options_, options_.train, [&](const Record& r) { visit(r.text); });
}

std::shared_ptr<Dataset> TextSource::open(Split split) const {
  const Tokenizer& tok = tokenizer("open()");
  const auto& cls = vocabularies();
  const std::string& path = split == Split::kTrain ? options_.train : options_.test;
  const size_t nl = options_.labels.size();
  std::vector<std::map<std::string, int64_t>> index(nl);
  std::vector<TokenLabelColumn> columns(nl);
  for (size_t k = 0; k < nl; ++k) {
    for (size_t c = 0; c < cls[k].size(); ++c) index[k].emplace(cls[k][c], static_cast<int64_t>(c));
    columns[k].name = options_.labels[k].name;
    columns[k].kind = options_.labels[k].kind;
    columns[k].size = options_.labels[k].kind == LabelKind::kReal ? 1 : static_cast<int64_t>(cls[k].size());
    if (columns[k].kind == LabelKind::kMultiLabel) columns[k].multi_offsets.push_back(0);
  }
  TokenSequences tokens;
  read_records(options_, path, [&](const Record& r) {
    std::vector<int64_t> ids = tok.encode(r.text);
    if (static_cast<int64_t>(ids.size()) > options_.max_length) ids.resize(static_cast<size_t>(options_.max_length));
    tokens.append(ids);
    for (size_t k = 0; k < nl; ++k) {
      const auto& l = options_.labels[k];
      auto lookup = [&](const std::string& v) {
        auto it = index[k].find(v);
        if (it == index[k].end()) text_data::unknown_class(path, r.line, l.name, v, cls[k]);
        return it->second;
      };
      switch (l.kind) {
        case LabelKind::kClass: columns[k].classes.push_back(lookup(r.cls[k])); break;
        case LabelKind::kReal: columns[k].reals.push_back(static_cast<float>(r.real[k])); break;
        case LabelKind::kMultiLabel:
          for (const auto& v : r.multi[k]) columns[k].multi.push_back(static_cast<int32_t>(lookup(v)));
          columns[k].multi_offsets.push_back(static_cast<int64_t>(columns[k].multi.size()));
          break;
        default: break;
      }
    }
  });
  return std::make_shared<TokenDataset>(options_.input, std::move(tokens), std::move(columns));
}

std::shared_ptr<DatasetSource> make_text_source(const ConfigNode& node) {
  return std::make_shared<TextSource>(TextOptions::from_config(node));
}

}  // namespace mtl
