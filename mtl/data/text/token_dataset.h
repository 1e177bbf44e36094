// TokenDataset: tokenized texts held compactly in memory (one flat int32 id array plus offsets), with their
// labels, collated per batch into right-padded id tensors. Shared by the text and conll sources, together
// with the small helpers both need (reading a text file line by line, class lists, labels.json).
//
//   Batch b = ds->batch({3, 0});  // inputs[input]: int64 [2, L] = <cls> ids... <pad>...; L = longest row
//
// Every row starts with kClsTokenId; class targets are int64 [B], real float [B], multi-label float [B, K],
// token-class int64 [B, L] aligned with the ids (kIgnoreIndex at <cls>, padding and non-first word pieces).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "mtl/data/dataset.h"

namespace mtl {

/// One label's values for every example of a TokenDataset.
struct TokenLabelColumn {
  std::string name;
  LabelKind kind = LabelKind::kClass;
  int64_t size = 0;                    // classes / labels / tags
  std::vector<int64_t> classes;        // kClass: class index per example
  std::vector<float> reals;            // kReal: value per example
  std::vector<int32_t> multi;          // kMultiLabel: label indices of all examples, flat
  std::vector<int64_t> multi_offsets;  // kMultiLabel: example i owns multi[offsets[i], offsets[i+1]); starts {0}
  std::vector<int32_t> tags;           // kTokenClass: one per token id, aligned with TokenDataset ids
};

/// Token ids of all examples (without <cls>), built by appending one example at a time.
struct TokenSequences {
  std::vector<int32_t> ids;
  std::vector<int64_t> offsets{0};  // example i is ids[offsets[i], offsets[i+1])
  int64_t size() const { return static_cast<int64_t>(offsets.size()) - 1; }
  void append(const std::vector<int64_t>& example);
};

class TokenDataset : public Dataset {
 public:
  TokenDataset(std::string input, TokenSequences tokens, std::vector<TokenLabelColumn> labels);
  int64_t size() const override { return tokens_.size(); }
  /// Thread-safe (reads only).
  Batch batch(const std::vector<int64_t>& indices) const override;
  /// Tokens per example including <cls>.
  std::vector<int64_t> lengths() const override;

 private:
  std::string input_;
  TokenSequences tokens_;
  std::vector<TokenLabelColumn> labels_;
};

namespace text_data {

/// Calls `visit(line_number, line)` for each line of `path` (1-based; a trailing \r and a UTF-8 BOM are
/// removed). Throws mtl::Error "path" when it cannot be opened and "path:line" for invalid UTF-8.
void for_each_line(const std::string& path, const std::function<void(int64_t, const std::string&)>& visit);

/// The pieces of `line` between occurrences of `sep` (n separators give n + 1 pieces, empty ones kept).
std::vector<std::string> split_on(const std::string& line, char sep);

/// Class names in order: numerically when every value is an integer, else by bytes.
std::vector<std::string> sorted_classes(const std::set<std::string>& values);

/// "a, b, c" (at most 20 shown, then the count).
std::string list_classes(const std::vector<std::string>& names);

/// The Error for a value outside a label's classes: "label 'party' value 'Whig' at line 17 is not one of
/// the 3 training classes (a, b, c)", located at path:line.
[[noreturn]] void unknown_class(const std::string& path, int64_t line, const std::string& label,
                                const std::string& value, const std::vector<std::string>& classes);

/// `dir`/labels.json: {"labels": {name: {"kind": ..., "classes": [...]}}} for the class-like labels.
void write_labels_json(const std::string& dir, const std::vector<LabelInfo>& labels);
/// Reads `dir`/labels.json: name -> classes. A missing or corrupt file is an mtl::Error naming it.
std::map<std::string, std::vector<std::string>> read_labels_json(const std::string& dir);

}  // namespace text_data
}  // namespace mtl
