#include "mtl/data/csv_dataset.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <set>

#include "mtl/config/config_node.h"
#include "mtl/config/option_check.h"
#include "mtl/core/error.h"
#include "mtl/data/tensor_dataset.h"

namespace mtl {
namespace {

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

bool parse_number(const std::string& s, double& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && std::isfinite(out);
}

bool parse_integer(const std::string& s, long long& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtoll(s.c_str(), &end, 10);
  return errno == 0 && end == s.c_str() + s.size();
}

// The classes of a label: distinct values, numeric order when all are integers, else string order.
std::vector<std::string> sorted_classes(const std::set<std::string>& values) {
  std::vector<std::pair<long long, std::string>> numeric;
  for (const auto& v : values) {
    long long n;
    if (!parse_integer(v, n)) return std::vector<std::string>(values.begin(), values.end());
    numeric.emplace_back(n, v);
  }
  std::sort(numeric.begin(), numeric.end());
  std::vector<std::string> out;
  for (const auto& p : numeric) out.push_back(p.second);
  return out;
}

std::string quoted_list(const std::vector<std::string>& names, size_t limit = 20) {
  std::vector<std::string> shown(names.begin(), names.begin() + std::min(limit, names.size()));
  std::string s = join(shown);
  if (names.size() > limit) s += ", ... (" + std::to_string(names.size()) + " in all)";
  return s;
}

// One parsed CSV file: the columns the options ask for, row by row.
struct RawTable {
  std::vector<std::string> feature_columns;
  std::vector<double> features;                   // row-major [rows, features]
  std::vector<std::vector<std::string>> classes;  // per label: the raw value of each row (class labels)
  std::vector<std::vector<double>> reals;         // per label: the value of each row (real labels)
  std::vector<int64_t> lines;                     // file line of each row
  int64_t rows = 0;
};

std::string line_ref(const std::string& path, int64_t line) { return path + ":" + std::to_string(line); }

// Reads the next line into `text` (counting it in `line`), without its '\r'; false at the end of the file.
bool next_line(std::istream& in, std::string& text, int64_t& line) {
  if (!std::getline(in, text)) return false;
  ++line;
  if (line == 1 && text.compare(0, 3, "\xEF\xBB\xBF") == 0) text = text.substr(3);  // UTF-8 BOM
  if (!text.empty() && text.back() == '\r') text.pop_back();
  return true;
}

// The header of a CSV file, with each column's index by name.
struct CsvHeader {
  std::vector<std::string> names;
  std::map<std::string, size_t> index;
  std::string where;  // path:line of the header row

  size_t find(const std::string& name, const std::string& role) const {
    auto it = index.find(name);
    if (it == index.end())
      throw Error(where, "no column '" + name + "' (" + role + ") in the header" + did_you_mean(name, names) +
                             "; columns: " + quoted_list(names));
    return it->second;
  }
};

// Reads the header row (the first non-blank line); column names must be non-empty and distinct.
CsvHeader read_header(std::istream& in, const CsvOptions& o, const std::string& path, int64_t& line) {
  std::string text;
  CsvHeader h;
  while (next_line(in, text, line)) {
    if (trim(text).empty()) continue;
    h.names = split_csv_line(text, o.delimiter, line_ref(path, line));
    h.where = line_ref(path, line);
    break;
  }
  if (h.names.empty()) throw Error(path, "empty CSV file: expected a header row");
  for (size_t i = 0; i < h.names.size(); ++i) {
    if (h.names[i].empty())
      throw Error(h.where, "empty column name in the header (column " + std::to_string(i + 1) + ")");
    if (!h.index.emplace(h.names[i], i).second)
      throw Error(h.where, "column '" + h.names[i] + "' appears twice in the header");
  }
  return h;
}

// Where the label and feature columns are in each row.
struct CsvColumns {
  std::vector<size_t> labels;
  std::vector<size_t> features;
};

// Finds the label columns, then the feature columns (`features` empty = every column that is not a label
// column), whose names go to `t.feature_columns`.
CsvColumns find_columns(const CsvOptions& o, const CsvHeader& h, const std::vector<std::string>& features,
                        RawTable& t) {
  CsvColumns c;
  std::set<std::string> label_columns;
  for (const auto& l : o.labels) {
    c.labels.push_back(h.find(l.column, "label '" + l.name + "'"));
    label_columns.insert(l.column);
  }
  if (features.empty()) {
    for (const auto& name : h.names)
      if (!label_columns.count(name)) t.feature_columns.push_back(name);
    if (t.feature_columns.empty()) throw Error(h.where, "no feature columns: every column is a label column");
  } else {
    t.feature_columns = features;
  }
  for (const auto& f : t.feature_columns) c.features.push_back(h.find(f, "feature"));
  return c;
}

// Appends the features and labels of one data row (at `where`) to `t`.
void add_row(const CsvOptions& o, const CsvColumns& c, const std::vector<std::string>& fields,
             const std::string& where, RawTable& t) {
  for (size_t j = 0; j < c.features.size(); ++j) {
    double v;
    const std::string& field = fields[c.features[j]];
    if (!parse_number(field, v))
      throw Error(where, "column '" + t.feature_columns[j] + "': expected a number, got '" + field + "'");
    t.features.push_back(v);
  }
  for (size_t k = 0; k < o.labels.size(); ++k) {
    const std::string& field = fields[c.labels[k]];
    if (o.labels[k].kind == LabelKind::kClass) {
      if (field.empty())
        throw Error(where, "column '" + o.labels[k].column + "' (label '" + o.labels[k].name + "'): empty class value");
      t.classes[k].push_back(field);
    } else {
      double v;
      if (!parse_number(field, v))
        throw Error(where, "column '" + o.labels[k].column + "' (label '" + o.labels[k].name +
                               "'): expected a number, got '" + field + "'");
      t.reals[k].push_back(v);
    }
  }
}

// `features` empty = every column that is not a label column.
RawTable parse_csv(const CsvOptions& o, const std::string& path, const std::vector<std::string>& features) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path, std::string("cannot open CSV file: ") + std::strerror(errno));
  int64_t line = 0;
  const CsvHeader header = read_header(in, o, path, line);
  RawTable t;
  const CsvColumns cols = find_columns(o, header, features, t);
  t.classes.resize(o.labels.size());
  t.reals.resize(o.labels.size());

  std::string text;
  while (next_line(in, text, line)) {
    if (trim(text).empty()) continue;
    const std::string where = line_ref(path, line);
    std::vector<std::string> fields = split_csv_line(text, o.delimiter, where);
    if (fields.size() != header.names.size())
      throw Error(where, "expected " + std::to_string(header.names.size()) + " fields as in the header, got " +
                             std::to_string(fields.size()));
    add_row(o, cols, fields, where, t);
    t.lines.push_back(line);
    ++t.rows;
  }
  if (in.bad()) throw Error(path, "read error");
  if (t.rows == 0) throw Error(path, "no data rows after the header");
  return t;
}

// Converts a parsed file into tensors, mapping class values through the train file's classes.
void to_tensors(const RawTable& raw, const std::string& path, const CsvOptions& o,
                const std::vector<std::vector<std::string>>& train_classes, at::Tensor& features, TensorMap& labels) {
  const int64_t f = static_cast<int64_t>(raw.feature_columns.size());
  std::vector<float> feats(raw.features.begin(), raw.features.end());
  features = at::from_blob(feats.data(), {raw.rows, f}, at::kFloat).clone();
  for (size_t k = 0; k < o.labels.size(); ++k) {
    const CsvLabelSpec& spec = o.labels[k];
    if (spec.kind == LabelKind::kClass) {
      const auto& classes = train_classes[k];
      std::map<std::string, int64_t> index;
      for (size_t c = 0; c < classes.size(); ++c) index[classes[c]] = static_cast<int64_t>(c);
      std::vector<int64_t> y(raw.rows);
      for (int64_t i = 0; i < raw.rows; ++i) {
        auto it = index.find(raw.classes[k][i]);
        if (it == index.end())
          throw Error(path + ":" + std::to_string(raw.lines[i]),
                      "label '" + spec.name + "' (column '" + spec.column + "'): class '" + raw.classes[k][i] +
                          "' does not occur in the train file " + o.train + "; known classes: " +
                          quoted_list(classes));
        y[i] = it->second;
      }
      labels[spec.name] = at::tensor(y, at::kLong);
    } else {
      std::vector<float> y(raw.reals[k].begin(), raw.reals[k].end());
      labels[spec.name] = at::tensor(y, at::kFloat);
    }
  }
}

}  // namespace

std::vector<std::string> split_csv_line(const std::string& line, char delimiter, const std::string& where) {
  std::vector<std::string> fields;
  size_t i = 0;
  const size_t n = line.size();
  for (;;) {
    std::string field;
    while (i < n && (line[i] == ' ' || line[i] == '\t') && line[i] != delimiter) ++i;
    if (i < n && line[i] == '"') {
      ++i;
      bool closed = false;
      while (i < n) {
        if (line[i] == '"') {
          if (i + 1 < n && line[i + 1] == '"') {
            field += '"';
            i += 2;
            continue;
          }
          ++i;
          closed = true;
          break;
        }
        field += line[i++];
      }
      if (!closed) throw Error(where, "unterminated quoted field");
      while (i < n && line[i] != delimiter) {
        if (line[i] != ' ' && line[i] != '\t') throw Error(where, "unexpected text after a quoted field");
        ++i;
      }
    } else {
      size_t end = line.find(delimiter, i);
      if (end == std::string::npos) end = n;
      field = trim(line.substr(i, end - i));
      i = end;
    }
    fields.push_back(field);
    if (i >= n) break;
    ++i;  // the delimiter
    if (i == n) {
      fields.emplace_back();  // a trailing delimiter ends with an empty field
      break;
    }
  }
  return fields;
}

CsvOptions CsvOptions::from_config(const ConfigNode& node) {
  CsvOptions o;
  o.train = node.require<std::string>("train");
  o.test = node.require<std::string>("test");
  std::string d = node.get<std::string>("delimiter", ",");
  node.check(d.size() == 1 && d != "\"" && d != "\n" && d != "\r", "delimiter",
             "expected one character other than a quote or newline, got '" + d + "'");
  o.delimiter = d[0];

  std::vector<std::string> names = node.keys("labels");
  node.check(!names.empty(), "labels",
             "expected at least one label: labels: {name: {column: col, kind: class|real}}");
  ConfigNode labels = node.child("labels");
  std::set<std::string> columns;
  for (const auto& name : names) {
    ConfigNode l = labels.child(name);
    CsvLabelSpec spec;
    spec.name = name;
    spec.column = l.get<std::string>("column", name);
    spec.kind = l.choice("kind", "class", {"class", "real"}) == "class" ? LabelKind::kClass : LabelKind::kReal;
    l.check(columns.insert(spec.column).second, "column", "column '" + spec.column + "' is used by two labels");
    o.labels.push_back(spec);
  }

  o.features = node.get<std::vector<std::string>>("features", {});
  std::set<std::string> seen;
  for (const auto& f : o.features) {
    node.check(seen.insert(f).second, "features", "column '" + f + "' is listed twice");
    node.check(!columns.count(f), "features", "column '" + f + "' is a label column; it cannot also be a feature");
  }
  o.standardize = node.get<bool>("standardize", o.standardize);
  return o;
}

void CsvOptions::validate() const {
  check(!train.empty(), "train", "expected the path of the training file");
  check(!test.empty(), "test", "expected the path of the test file");
  check(delimiter != '"' && delimiter != '\n' && delimiter != '\r', "delimiter",
        "expected one character other than a quote or newline");
  check(!labels.empty(), "labels", "expected at least one label: {name, column, kind (class|real)}");
  std::set<std::string> columns;
  for (const auto& l : labels) {
    const std::string key = "labels." + l.name;
    check(!l.name.empty() && !l.column.empty(), key, "expected a label name and its column");
    check(l.kind == LabelKind::kClass || l.kind == LabelKind::kReal, key + ".kind", "expected class or real");
    check(columns.insert(l.column).second, key + ".column", "column '" + l.column + "' is used by two labels");
  }
  std::set<std::string> seen;
  for (const auto& f : features) {
    check(seen.insert(f).second, "features", "column '" + f + "' is listed twice");
    check(!columns.count(f), "features", "column '" + f + "' is a label column; it cannot also be a feature");
  }
}

CsvSource::CsvSource(CsvOptions options) : options_(std::move(options)) {
  validate_options("CsvOptions", [&] { options_.validate(); });
}

const CsvSource::TrainState& CsvSource::train_state() const {
  std::call_once(train_once_, [this] {
    auto st = std::make_unique<TrainState>();
    RawTable raw = parse_csv(options_, options_.train, options_.features);
    st->feature_columns = raw.feature_columns;
    const int64_t f = static_cast<int64_t>(raw.feature_columns.size());

    st->schema.inputs.push_back(InputInfo{"features", {f}});
    for (size_t k = 0; k < options_.labels.size(); ++k) {
      const CsvLabelSpec& spec = options_.labels[k];
      LabelInfo info{spec.name, spec.kind, 1, {}, {}};
      std::vector<std::string> classes;
      if (spec.kind == LabelKind::kClass) {
        classes = sorted_classes(std::set<std::string>(raw.classes[k].begin(), raw.classes[k].end()));
        info.size = static_cast<int64_t>(classes.size());
        info.classes = classes;
      }
      st->schema.labels.push_back(info);
      st->classes.push_back(classes);
    }

    if (options_.standardize) {
      st->mean.assign(f, 0.0);
      st->std.assign(f, 0.0);
      for (int64_t i = 0; i < raw.rows; ++i)
        for (int64_t j = 0; j < f; ++j) st->mean[j] += raw.features[i * f + j];
      for (int64_t j = 0; j < f; ++j) st->mean[j] /= static_cast<double>(raw.rows);
      for (int64_t i = 0; i < raw.rows; ++i)
        for (int64_t j = 0; j < f; ++j) {
          double d = raw.features[i * f + j] - st->mean[j];
          st->std[j] += d * d;
        }
      for (int64_t j = 0; j < f; ++j) {
        st->std[j] = std::sqrt(st->std[j] / static_cast<double>(raw.rows));
        if (!(st->std[j] > 0)) st->std[j] = 1.0;  // a constant column: leave it centred, unscaled
      }
    }
    to_tensors(raw, options_.train, options_, st->classes, st->table.features, st->table.labels);
    train_ = std::move(st);
  });
  return *train_;
}

DatasetSchema CsvSource::schema() const { return train_state().schema; }
std::vector<double> CsvSource::feature_mean() const { return train_state().mean; }
std::vector<double> CsvSource::feature_std() const { return train_state().std; }

std::shared_ptr<Dataset> CsvSource::open(Split split) const {
  const TrainState& st = train_state();
  Table t;
  if (split == Split::kTrain)
    t = st.table;
  else
    to_tensors(parse_csv(options_, options_.test, st.feature_columns), options_.test, options_, st.classes,
               t.features, t.labels);
  InputTransform norm;
  if (options_.standardize) norm = InputTransform::normalization(st.mean, st.std);
  const std::string& path = split == Split::kTrain ? options_.train : options_.test;
  return std::make_shared<TensorDataset>(st.schema, t.features, t.labels, norm, path);
}

std::shared_ptr<DatasetSource> make_csv_source(const ConfigNode& node) {
  return std::make_shared<CsvSource>(CsvOptions::from_config(node));
}

}  // namespace mtl
