#include "mtl/data/text/conll_dataset.h"

#include <set>

#include "mtl/config/config_node.h"
#include "mtl/config/option_check.h"
#include "mtl/core/error.h"
#include "mtl/data/text/token_dataset.h"
#include "mtl/data/text/tokenizer.h"

namespace mtl {
namespace {

struct Sentence {
  std::vector<std::string> words;
  std::vector<int64_t> lines;                  // file line of each word
  std::vector<std::vector<std::string>> tags;  // per label, per word
};

struct Columns {
  size_t token = 0;
  std::vector<size_t> labels;
};

Columns column_positions(const ConllOptions& o) {
  Columns c;
  for (size_t i = 0; i < o.columns.size(); ++i)
    if (o.columns[i] == o.token_column) c.token = i;
  for (const auto& l : o.labels)
    for (size_t i = 0; i < o.columns.size(); ++i)
      if (o.columns[i] == l) c.labels.push_back(i);
  return c;
}

std::vector<std::string> split_fields(const std::string& line, bool tab) {
  if (tab) return text_data::split_on(line, '\t');
  std::vector<std::string> f;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i == line.size()) break;
    size_t e = i;
    while (e < line.size() && line[e] != ' ' && line[e] != '\t') ++e;
    f.push_back(line.substr(i, e - i));
    i = e;
  }
  return f;
}

void read_sentences(const ConllOptions& o, const std::string& path, const std::function<void(const Sentence&)>& visit) {
  const Columns cols = column_positions(o);
  Sentence s;
  s.tags.resize(o.labels.size());
  int64_t count = 0;
  auto flush = [&] {
    if (s.words.empty()) return;
    ++count;
    visit(s);
    s.words.clear();
    s.lines.clear();
    for (auto& t : s.tags) t.clear();
  };
  text_data::for_each_line(path, [&](int64_t line, const std::string& text) {
    if (text.find_first_not_of(" \t") == std::string::npos) {
      flush();
      return;
    }
    std::vector<std::string> f = split_fields(text, o.tab_separated);
    if (!f.empty() && f[0] == "-DOCSTART-") {
      flush();
      return;
    }
    if (f.size() != o.columns.size())
      throw Error(path + ":" + std::to_string(line), "expected " + std::to_string(o.columns.size()) + " columns (" +
                                                         join(o.columns) + "), got " + std::to_string(f.size()));
    for (size_t i = 0; i < f.size(); ++i)
      if (f[i].empty())
        throw Error(path + ":" + std::to_string(line), "empty column '" + o.columns[i] + "'");
    s.words.push_back(f[cols.token]);
    s.lines.push_back(line);
    for (size_t k = 0; k < cols.labels.size(); ++k) s.tags[k].push_back(f[cols.labels[k]]);
  });
  flush();
  if (count == 0) throw Error(path, "no sentences in the file (it is empty)");
}

}  // namespace

ConllOptions ConllOptions::from_config(const ConfigNode& node) {
  ConllOptions o;
  o.train = node.require<std::string>("train");
  o.test = node.require<std::string>("test");
  o.columns = node.require<std::vector<std::string>>("columns");
  std::set<std::string> names;
  for (const auto& c : o.columns) {
    node.check(!c.empty(), "columns", "column names must not be empty");
    node.check(names.insert(c).second, "columns", "column '" + c + "' is listed twice");
  }
  o.token_column = node.get<std::string>("token_column", o.token_column);
  node.check(names.count(o.token_column) > 0, node.has("token_column") ? "token_column" : "columns",
             "no token column '" + o.token_column + "' among the columns (" + join(o.columns) +
                 "); name one 'token' or set token_column");
  o.labels = node.require<std::vector<std::string>>("labels");
  node.check(!o.labels.empty(), "labels", "expected at least one tag column, e.g. labels: [ner]");
  std::set<std::string> seen;
  for (const auto& l : o.labels) {
    node.check(names.count(l) > 0, "labels", "'" + l + "' is not one of the columns (" + join(o.columns) + ")" +
                                                 did_you_mean(l, o.columns));
    node.check(l != o.token_column, "labels", "'" + l + "' is the token column");
    node.check(seen.insert(l).second, "labels", "'" + l + "' is listed twice");
  }
  ConfigNode classes = node.child("classes");
  for (const auto& name : node.keys("classes")) {
    classes.check(seen.count(name) > 0, name, "'" + name + "' is not one of the labels (" + join(o.labels) + ")");
    std::vector<std::string> list = classes.require<std::vector<std::string>>(name);
    std::set<std::string> distinct(list.begin(), list.end());
    classes.check(!list.empty() && distinct.size() == list.size(), name, "expected a non-empty list of distinct tags");
    o.classes[name] = list;
  }
  o.tab_separated = node.choice("separator", "whitespace", {"whitespace", "tab"}) == "tab";
  o.input = node.get<std::string>("input", o.input);
  node.check(!o.input.empty(), "input", "expected a non-empty input name");
  o.max_length = positive<int64_t>(node, "max_length", o.max_length);
  return o;
}

void ConllOptions::validate() const {
  check(!train.empty(), "train", "expected the path of the training file");
  check(!test.empty(), "test", "expected the path of the test file");
  check(!columns.empty(), "columns", "expected the names of the columns of each line, e.g. [token, ner]");
  std::set<std::string> names;
  for (const auto& c : columns) {
    check(!c.empty(), "columns", "column names must not be empty");
    check(names.insert(c).second, "columns", "column '" + c + "' is listed twice");
  }
  check(names.count(token_column) > 0, "token_column",
        "no token column '" + token_column + "' among the columns (" + join(columns) + ")");
  check(!labels.empty(), "labels", "expected at least one tag column, e.g. labels: [ner]");
  std::set<std::string> seen;
  for (const auto& l : labels) {
    check(names.count(l) > 0, "labels", "'" + l + "' is not one of the columns (" + join(columns) + ")");
    check(l != token_column, "labels", "'" + l + "' is the token column");
    check(seen.insert(l).second, "labels", "'" + l + "' is listed twice");
  }
  for (const auto& [name, list] : classes) {
    check(seen.count(name) > 0, "classes." + name, "'" + name + "' is not one of the labels (" + join(labels) + ")");
    std::set<std::string> distinct(list.begin(), list.end());
    check(!list.empty() && distinct.size() == list.size(), "classes." + name,
          "expected a non-empty list of distinct tags");
  }
  check(!input.empty(), "input", "expected a non-empty input name");
  check(max_length > 0, "max_length", "expected a positive number, got " + std::to_string(max_length));
}

namespace {

std::vector<std::pair<std::string, LabelKind>> tag_labels(const std::vector<std::string>& labels) {
  std::vector<std::pair<std::string, LabelKind>> out;
  for (const auto& l : labels) out.emplace_back(l, LabelKind::kTokenClass);
  return out;
}

}  // namespace

ConllSource::ConllSource(ConllOptions options)
    : TextSourceBase("conll", options.input, options.max_length, tag_labels(options.labels)),
      options_(std::move(options)) {
  validate_options("ConllOptions", [&] { options_.validate(); });
}

std::vector<std::vector<std::string>> ConllSource::build_vocabularies() const {
  const size_t nl = options_.labels.size();
  std::vector<std::vector<std::string>> out(nl);
  bool scan = false;
  for (size_t k = 0; k < nl; ++k) {
    auto it = options_.classes.find(options_.labels[k]);
    if (it != options_.classes.end()) out[k] = it->second;
    else scan = true;
  }
  if (!scan) return out;
  std::vector<std::set<std::string>> seen(nl);
  read_sentences(options_, options_.train, [&](const Sentence& s) {
    for (size_t k = 0; k < nl; ++k) seen[k].insert(s.tags[k].begin(), s.tags[k].end());
  });
  for (size_t k = 0; k < nl; ++k)
    if (out[k].empty()) out[k] = text_data::sorted_classes(seen[k]);
  return out;
}

void ConllSource::for_each_training_text(const std::function<void(const std::string&)>& visit) const {
  read_sentences(options_, options_.train, [&](const Sentence& s) { visit(join(s.words, " ")); });
}

std::shared_ptr<Dataset> ConllSource::open(Split split) const {
  const Tokenizer& tok = tokenizer("open()");
  const auto& t = vocabularies();
  const std::string& path = split == Split::kTrain ? options_.train : options_.test;
  const size_t nl = options_.labels.size();
  std::vector<std::map<std::string, int32_t>> index(nl);
  std::vector<TokenLabelColumn> columns(nl);
  for (size_t k = 0; k < nl; ++k) {
    for (size_t c = 0; c < t[k].size(); ++c) index[k].emplace(t[k][c], static_cast<int32_t>(c));
    columns[k].name = options_.labels[k];
    columns[k].kind = LabelKind::kTokenClass;
    columns[k].size = static_cast<int64_t>(t[k].size());
  }
  TokenSequences tokens;
  std::vector<int64_t> ids;
  read_sentences(options_, path, [&](const Sentence& s) {
    ids.clear();
    std::vector<std::vector<int32_t>> tags(nl);
    for (size_t w = 0; w < s.words.size() && static_cast<int64_t>(ids.size()) < options_.max_length; ++w) {
      std::vector<int64_t> pieces = tok.encode(s.words[w]);
      if (pieces.empty()) pieces.push_back(kUnkTokenId);
      const size_t room = static_cast<size_t>(options_.max_length) - ids.size();
      if (pieces.size() > room) pieces.resize(room);
      for (size_t k = 0; k < nl; ++k) {
        auto it = index[k].find(s.tags[k][w]);
        if (it == index[k].end()) text_data::unknown_class(path, s.lines[w], options_.labels[k], s.tags[k][w], t[k]);
        tags[k].push_back(it->second);
        tags[k].insert(tags[k].end(), pieces.size() - 1, static_cast<int32_t>(kIgnoreIndex));
      }
      ids.insert(ids.end(), pieces.begin(), pieces.end());
    }
    // Tags of words cut off by max_length are still checked, so a bad tag never goes unnoticed.
    for (size_t k = 0; k < nl; ++k)
      for (size_t w = 0; w < s.words.size(); ++w)
        if (!index[k].count(s.tags[k][w])) text_data::unknown_class(path, s.lines[w], options_.labels[k], s.tags[k][w], t[k]);
    tokens.append(ids);
    for (size_t k = 0; k < nl; ++k) columns[k].tags.insert(columns[k].tags.end(), tags[k].begin(), tags[k].end());
  });
  return std::make_shared<TokenDataset>(options_.input, std::move(tokens), std::move(columns));
}

std::shared_ptr<DatasetSource> make_conll_source(const ConfigNode& node) {
  return std::make_shared<ConllSource>(ConllOptions::from_config(node));
}

}  // namespace mtl
