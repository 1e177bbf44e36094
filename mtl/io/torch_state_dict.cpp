#include "mtl/io/torch_state_dict.h"

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>
#include <c10/util/Exception.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <unordered_map>

#include "mtl/core/error.h"
#include "mtl/core/text.h"
#include "mtl/io/atomic_file.h"

namespace mtl {

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "mtl's .pt reader/writer assumes a little-endian host (it copies storage bytes as they are)");
#endif

namespace {

// ---------------------------------------------------------------------------------------------------------------
// The storage types a state dict names (torch.<Type>Storage) and their dtypes.
struct StorageType {
  const char* name;
  at::ScalarType type;
};
constexpr StorageType kStorageTypes[] = {
    {"FloatStorage", at::kFloat},  {"DoubleStorage", at::kDouble}, {"HalfStorage", at::kHalf},
    {"BFloat16Storage", at::kBFloat16}, {"LongStorage", at::kLong}, {"IntStorage", at::kInt},
    {"ShortStorage", at::kShort},  {"CharStorage", at::kChar},     {"ByteStorage", at::kByte},
    {"BoolStorage", at::kBool},
};

const StorageType* storage_type(const std::string& name) {
  for (const auto& s : kStorageTypes)
    if (name == s.name) return &s;
  return nullptr;
}

const char* storage_name(at::ScalarType type) {
  for (const auto& s : kStorageTypes)
    if (s.type == type) return s.name;
  return nullptr;
}

// ---------------------------------------------------------------------------------------------------------------
// Values of the pickle machine. Nothing here is ever called: a global that is not part of a state dict becomes an
// Opaque value (its name kept for messages), and so does anything built from it.
struct Value;
using ValuePtr = std::shared_ptr<Value>;

struct Value {
  enum class Kind { None, Bool, Int, Float, String, Bytes, Tuple, List, Dict, Global, Storage, Tensor, Opaque };
  Kind kind = Kind::None;
  int64_t i = 0;
  double f = 0;
  std::string s;  // String, Bytes; Global and Opaque: "module.name"
  std::vector<ValuePtr> items;                            // Tuple, List
  std::vector<std::pair<ValuePtr, ValuePtr>> entries;     // Dict (insertion order)
  at::ScalarType dtype = at::kFloat;                      // Storage: its type; s its key, i its numel
  std::vector<int64_t> size, stride;                      // Tensor: a view of items[0] (a Storage) at offset i
  int depth = 1;                                          // nesting depth (bounded: no deep recursion anywhere)
};

ValuePtr make(Value::Kind k) {
  auto v = std::make_shared<Value>();
  v->kind = k;
  return v;
}

const char* kind_name(const Value& v) {
  switch (v.kind) {
    case Value::Kind::None: return "None";
    case Value::Kind::Bool: return "a bool";
    case Value::Kind::Int: return "an int";
    case Value::Kind::Float: return "a float";
    case Value::Kind::String: return "a string";
    case Value::Kind::Bytes: return "bytes";
    case Value::Kind::Tuple: return "a tuple";
    case Value::Kind::List: return "a list";
    case Value::Kind::Dict: return "a dict";
    case Value::Kind::Global: return "a class or function";
    case Value::Kind::Storage: return "a storage";
    case Value::Kind::Tensor: return "a tensor";
    case Value::Kind::Opaque: return "an object";
  }
  return "a value";
}

std::string describe(const Value& v) {
  if (v.kind == Value::Kind::Opaque || v.kind == Value::Kind::Global) return std::string(kind_name(v)) + " " + v.s;
  return kind_name(v);
}

constexpr int kMaxDepth = 200;  // state dicts nest 2-4 levels; checkpoint dicts a few more

// The restricted unpickler: protocols 2-5 opcodes that plain data use, GLOBAL resolved against a fixed list,
// REDUCE evaluated only for the state-dict builders (OrderedDict, tensor rebuilds), BINPERSID for storages.
class Unpickler {
 public:
  using PersistentLoad = std::function<ValuePtr(const Value& pid)>;

  Unpickler(const std::string& data, PersistentLoad load, std::string where)
      : data_(data), load_(std::move(load)), where_(std::move(where)) {}

  ValuePtr run() {
    while (true) {
      if (pos_ >= data_.size()) fail("ends without a STOP opcode (truncated?)");
      const size_t at = pos_;
      const uint8_t op = u8();
      if (op == '.') return finish();  // STOP
      if (!stack_op(op) && !scalar_op(op) && !container_op(op) && !object_op(op) && !memo_op(op)) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "0x%02x", op);
        pos_ = at;
        fail(std::string("opcode ") + buf + " is not one a state dict uses");
      }
    }
  }

 private:
  // Each *_op handles its group of opcodes and returns false for any other.

  bool stack_op(uint8_t op) {
    switch (op) {
      case 0x80: u8(); return true;                     // PROTO
      case 0x95: take(8); return true;                  // FRAME (protocol 4): a length hint
      case '(': marks_.push_back(stack_.size()); return true;  // MARK
      case '0': pop(); return true;                     // POP
      case '1': pop_mark(); return true;                // POP_MARK
      case '2': push(top()); return true;               // DUP
      default: return false;
    }
  }

  bool scalar_op(uint8_t op) {
    switch (op) {
      case 'N': push(make(Value::Kind::None)); return true;
      case 0x88: push(boolean(true)); return true;      // NEWTRUE
      case 0x89: push(boolean(false)); return true;     // NEWFALSE
      case 'J': push(integer(static_cast<int32_t>(le(4)))); return true;  // BININT
      case 'K': push(integer(u8())); return true;                         // BININT1
      case 'M': push(integer(static_cast<int64_t>(le(2)))); return true;  // BININT2
      case 0x8a: push(long1()); return true;                              // LONG1
      case 'G': push(binfloat()); return true;                            // BINFLOAT
      case 'X': push(string(Value::Kind::String, le(4))); return true;   // BINUNICODE
      case 0x8c: push(string(Value::Kind::String, u8())); return true;   // SHORT_BINUNICODE
      case 0x8d: push(string(Value::Kind::String, le(8))); return true;  // BINUNICODE8
      case 'B': push(string(Value::Kind::Bytes, le(4))); return true;    // BINBYTES
      case 'C': push(string(Value::Kind::Bytes, u8())); return true;     // SHORT_BINBYTES
      case 0x8e: push(string(Value::Kind::Bytes, le(8))); return true;   // BINBYTES8
      case 'T': push(string(Value::Kind::String, le(4))); return true;   // BINSTRING (protocol 1)
      case 'U': push(string(Value::Kind::String, u8())); return true;    // SHORT_BINSTRING
      default: return false;
    }
  }

  bool container_op(uint8_t op) {
    switch (op) {
      case ')': push(make(Value::Kind::Tuple)); return true;             // EMPTY_TUPLE
      case 't': push(sequence(Value::Kind::Tuple, pop_mark())); return true;  // TUPLE
      case 0x85: push(sequence(Value::Kind::Tuple, pop_n(1))); return true;   // TUPLE1
      case 0x86: push(sequence(Value::Kind::Tuple, pop_n(2))); return true;   // TUPLE2
      case 0x87: push(sequence(Value::Kind::Tuple, pop_n(3))); return true;   // TUPLE3
      case ']': push(make(Value::Kind::List)); return true;                   // EMPTY_LIST
      case 'l': push(sequence(Value::Kind::List, pop_mark())); return true;   // LIST
      case 'a': append(pop_n(1)); return true;                                // APPEND
      case 'e': append(pop_mark()); return true;                              // APPENDS
      case '}': push(make(Value::Kind::Dict)); return true;                   // EMPTY_DICT
      case 'd': {                                                              // DICT
        ValuePtr d = make(Value::Kind::Dict);
        set_items(d, pop_mark());
        push(d);
        return true;
      }
      case 's': {  // SETITEM (the pair first: top() is then the dict; argument order is unspecified)
        std::vector<ValuePtr> kv = pop_n(2);
        set_items(top(), std::move(kv));
        return true;
      }
      case 'u': {                                          // SETITEMS
        std::vector<ValuePtr> kv = pop_mark();
        set_items(top(), std::move(kv));
        return true;
      }
      default: return false;
    }
  }

  // Classes and calls: resolved against the fixed list, evaluated only for the state-dict builders.
  bool object_op(uint8_t op) {
    switch (op) {
      case 'c': {  // GLOBAL "module\nname\n"
        std::string module = line(), name = line();
        push(global(module, name));
        return true;
      }
      case 0x93: {  // STACK_GLOBAL
        ValuePtr name = pop(), module = pop();
        if (name->kind != Value::Kind::String || module->kind != Value::Kind::String)
          fail("STACK_GLOBAL needs two strings");
        push(global(module->s, name->s));
        return true;
      }
      case 'R': {  // REDUCE
        ValuePtr args = pop(), callable = pop();
        push(reduce(*callable, *args));
        return true;
      }
      case 0x81: {  // NEWOBJ: cls.__new__(cls, *args), never run
        ValuePtr args = pop(), cls = pop();
        push(opaque(cls->s));
        return true;
      }
      case 'b': {  // BUILD: state for the object below; never run
        ValuePtr state = pop();
        const Value& obj = *top();
        if (obj.kind != Value::Kind::Dict && obj.kind != Value::Kind::Tensor && obj.kind != Value::Kind::Opaque)
          fail("BUILD on " + describe(obj));
        return true;  // OrderedDict's _metadata, a Parameter's state: nothing a state dict's tensors need
      }
      case 'Q': push(persistent(pop())); return true;  // BINPERSID
      default: return false;
    }
  }

  bool memo_op(uint8_t op) {
    switch (op) {
      case 'q': memo_put(u8()); return true;           // BINPUT
      case 'r': memo_put(le(4)); return true;          // LONG_BINPUT
      case 0x94: memo_put(memo_.size()); return true;  // MEMOIZE
      case 'h': push(memo_get(u8())); return true;     // BINGET
      case 'j': push(memo_get(le(4))); return true;    // LONG_BINGET
      default: return false;
    }
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(where_, "data.pkl byte " + std::to_string(pos_) + ": " + what);
  }

  uint8_t u8() {
    if (pos_ >= data_.size()) fail("unexpected end (truncated?)");
    return static_cast<uint8_t>(data_[pos_++]);
  }
  const char* take(uint64_t n) {
    if (n > data_.size() - pos_) fail("a value runs past the end (truncated?)");
    const char* p = data_.data() + pos_;
    pos_ += n;
    return p;
  }
  uint64_t le(int n) {
    const char* p = take(n);
    uint64_t v = 0;
    for (int k = n - 1; k >= 0; --k) v = (v << 8) | static_cast<uint8_t>(p[k]);
    return v;
  }
  std::string line() {
    const size_t end = data_.find('\n', pos_);
    if (end == std::string::npos || end - pos_ > 256) fail("GLOBAL without a short newline-terminated name");
    std::string s = data_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return s;
  }

  void push(ValuePtr v) { stack_.push_back(std::move(v)); }
  ValuePtr pop() {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) fail("pops an empty stack");
    ValuePtr v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  const ValuePtr& top() const {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) fail("reads an empty stack");
    return stack_.back();
  }
  std::vector<ValuePtr> pop_n(size_t n) {
    std::vector<ValuePtr> out(n);
    for (size_t k = n; k-- > 0;) out[k] = pop();
    return out;
  }
  std::vector<ValuePtr> pop_mark() {
    if (marks_.empty()) fail("no MARK to pop to");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<ValuePtr> out(std::make_move_iterator(stack_.begin() + static_cast<std::ptrdiff_t>(m)),
                              std::make_move_iterator(stack_.end()));
    stack_.resize(m);
    return out;
  }

  void memo_put(uint64_t index) { memo_[index] = top(); }
  ValuePtr memo_get(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) fail("reads memo entry " + std::to_string(index) + ", never written");
    return it->second;
  }

  void deepen(Value& parent, const Value& child) {
    parent.depth = std::max(parent.depth, child.depth + 1);
    if (parent.depth > kMaxDepth) fail("values nest deeper than " + std::to_string(kMaxDepth) + " levels");
  }

  static ValuePtr boolean(bool b) {
    ValuePtr v = make(Value::Kind::Bool);
    v->i = b;
    return v;
  }
  static ValuePtr integer(int64_t i) {
    ValuePtr v = make(Value::Kind::Int);
    v->i = i;
    return v;
  }
  ValuePtr long1() {
    const uint8_t n = u8();
    if (n > 8) fail("an integer wider than 64 bits");
    const char* p = take(n);
    uint64_t v = 0;
    for (int k = n - 1; k >= 0; --k) v = (v << 8) | static_cast<uint8_t>(p[k]);
    if (n > 0 && n < 8 && (static_cast<uint8_t>(p[n - 1]) & 0x80)) v |= ~uint64_t{0} << (8 * n);  // sign-extend
    return integer(static_cast<int64_t>(v));
  }
  ValuePtr binfloat() {
    const char* p = take(8);
    uint64_t bits = 0;
    for (int k = 0; k < 8; ++k) bits = (bits << 8) | static_cast<uint8_t>(p[k]);  // big-endian
    ValuePtr v = make(Value::Kind::Float);
    std::memcpy(&v->f, &bits, sizeof bits);
    return v;
  }
  ValuePtr string(Value::Kind kind, uint64_t n) {
    ValuePtr v = make(kind);
    const char* p = take(n);
    v->s.assign(p, n);
    return v;
  }
  ValuePtr sequence(Value::Kind kind, std::vector<ValuePtr> items) {
    ValuePtr v = make(kind);
    for (const auto& x : items) deepen(*v, *x);
    v->items = std::move(items);
    return v;
  }
  void append(std::vector<ValuePtr> items) {
    const ValuePtr& list = top();
    if (list->kind == Value::Kind::Opaque) return;  // an object's own append: never run
    if (list->kind != Value::Kind::List) fail("APPEND to " + describe(*list));
    for (auto& x : items) {
      deepen(*list, *x);
      list->items.push_back(std::move(x));
    }
  }
  void set_items(const ValuePtr& dict, std::vector<ValuePtr> kv) {
    if (dict->kind == Value::Kind::Opaque) return;  // an object's own __setitem__: never run
    if (dict->kind != Value::Kind::Dict) fail("SETITEM on " + describe(*dict));
    if (kv.size() % 2) fail("SETITEMS with an odd number of values");
    for (size_t k = 0; k < kv.size(); k += 2) {
      deepen(*dict, *kv[k + 1]);
      dict->entries.emplace_back(std::move(kv[k]), std::move(kv[k + 1]));
    }
  }

  ValuePtr global(const std::string& module, const std::string& name) {
    ValuePtr v = make(Value::Kind::Global);
    v->s = module + "." + name;
    const bool known = v->s == "collections.OrderedDict" || v->s == "torch._utils._rebuild_tensor_v2" ||
                       v->s == "torch._utils._rebuild_parameter" || (module == "torch" && storage_type(name));
    if (!known) v->kind = Value::Kind::Opaque;  // a class or function we never call
    return v;
  }
  static ValuePtr opaque(const std::string& name) {
    ValuePtr v = make(Value::Kind::Opaque);
    v->s = name;
    return v;
  }

  ValuePtr reduce(const Value& callable, const Value& args) {
    if (callable.kind == Value::Kind::Opaque) return opaque(callable.s);  // e.g. a pickled module: never built
    if (callable.kind != Value::Kind::Global || args.kind != Value::Kind::Tuple)
      fail("REDUCE on " + describe(callable));
    const auto& a = args.items;
    if (callable.s == "collections.OrderedDict") {
      if (!a.empty()) fail("OrderedDict built from arguments (a state dict starts empty)");
      return make(Value::Kind::Dict);
    }
    if (callable.s == "torch._utils._rebuild_parameter") {
      if (a.size() < 1 || a[0]->kind != Value::Kind::Tensor) fail("_rebuild_parameter without a tensor");
      return a[0];
    }
    if (callable.s == "torch._utils._rebuild_tensor_v2") return rebuild_tensor(a);
    fail("REDUCE on " + describe(callable) + " (a storage type is not called)");
  }

  static bool ints(const Value& t, std::vector<int64_t>& out) {
    if (t.kind != Value::Kind::Tuple) return false;
    for (const auto& x : t.items) {
      if (x->kind != Value::Kind::Int) return false;
      out.push_back(x->i);
    }
    return true;
  }

  // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]): kept as
  // a view description; the bounds are checked when the tensor is read, where its name is known.
  ValuePtr rebuild_tensor(const std::vector<ValuePtr>& a) {
    if (a.size() < 4 || a[0]->kind != Value::Kind::Storage || a[1]->kind != Value::Kind::Int)
      fail("_rebuild_tensor_v2 without (storage, offset, size, stride)");
    ValuePtr v = make(Value::Kind::Tensor);
    if (!ints(*a[2], v->size) || !ints(*a[3], v->stride) || v->size.size() != v->stride.size())
      fail("a tensor's size and stride are not tuples of ints of one length");
    v->i = a[1]->i;
    v->items = {a[0]};
    return v;
  }

  ValuePtr persistent(const ValuePtr& pid) {
    ValuePtr v = load_(*pid);
    if (!v) fail("a persistent id that is not ('storage', type, key, location, numel)");
    return v;
  }

  ValuePtr finish() {
    if (stack_.size() != 1 || !marks_.empty()) fail("STOP with " + std::to_string(stack_.size()) + " values on the stack");
    ValuePtr result = std::move(stack_.back());
    stack_.clear();
    memo_.clear();
    return result;
  }

  const std::string& data_;
  PersistentLoad load_;
  std::string where_;
  size_t pos_ = 0;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, ValuePtr> memo_;
};

// The archive's storages, read on demand (once each: views of one storage share it), and the tensors over them.
class Storages {
 public:
  Storages(caffe2::serialize::PyTorchStreamReader& reader, std::string path) : reader_(reader), path_(std::move(path)) {}

  // BINPERSID: ('storage', torch.<Type>Storage, key, location, numel) -> a Storage value (no bytes read yet).
  ValuePtr persistent_load(const Value& pid) const {
    const auto& a = pid.items;
    if (pid.kind != Value::Kind::Tuple || a.size() != 5 || a[0]->kind != Value::Kind::String ||
        a[0]->s != "storage" || a[2]->kind != Value::Kind::String || a[4]->kind != Value::Kind::Int)
      return nullptr;
    const std::string type = a[1]->s.substr(a[1]->s.rfind('.') + 1);
    const StorageType* st = a[1]->kind == Value::Kind::Global ? storage_type(type) : nullptr;
    if (!st) throw Error(path_, "storage '" + a[2]->s + "' has type " + a[1]->s + ", not one of mtl's dtypes");
    ValuePtr v = make(Value::Kind::Storage);
    v->s = a[2]->s;
    v->i = a[4]->i;
    v->dtype = st->type;
    return v;
  }

  // The tensor `name` of the state dict: bounds checked against its storage, then copied out of it.
  at::Tensor tensor(const std::string& name, const Value& t) {
    const Value& st = *t.items[0];
    const std::string where = "tensor '" + name + "'";
    const at::Tensor& data = storage(where, st);
    bool empty = false;
    for (size_t d = 0; d < t.size.size(); ++d) {
      if (t.size[d] < 0 || t.stride[d] < 0)
        throw Error(path_, where + ": negative size or stride (size " + shape_text(t.size) + ", stride " + shape_text(t.stride) + ")");
      empty = empty || t.size[d] == 0;
    }
    if (t.i < 0) throw Error(path_, where + ": negative storage offset " + std::to_string(t.i));
    if (empty) return at::empty(t.size, data.options());
    // The last element the view reads must lie in the storage; each term < 2^126, so 128 bits never overflow.
    unsigned __int128 last = static_cast<uint64_t>(t.i);
    for (size_t d = 0; d < t.size.size() && last < static_cast<uint64_t>(data.numel()); ++d)
      last += static_cast<unsigned __int128>(t.size[d] - 1) * static_cast<uint64_t>(t.stride[d]);
    if (last >= static_cast<unsigned __int128>(data.numel()))
      throw Error(path_, where + " of size " + shape_text(t.size) + " at offset " + std::to_string(t.i) +
                             " reads past the end of its storage '" + st.s + "' (" + std::to_string(data.numel()) +
                             " elements)");
    return data.as_strided(t.size, t.stride, t.i).clone(at::MemoryFormat::Contiguous);
  }

 private:
  const at::Tensor& storage(const std::string& where, const Value& st) {
    auto it = cache_.find(st.s);
    if (it != cache_.end()) return it->second;
    const std::string record = "data/" + st.s;
    if (!reader_.hasRecord(record)) throw Error(path_, where + ": its storage has no record " + record + " in the archive");
    auto [ptr, n] = reader_.getRecord(record);
    const size_t item = c10::elementSize(st.dtype);
    if (st.i < 0 || static_cast<uint64_t>(st.i) != n / item || n % item)
      throw Error(path_, where + ": its storage '" + st.s + "' should hold " + std::to_string(st.i) + " " +
                             c10::toString(st.dtype) + " elements, but record " + record + " has " + std::to_string(n) +
                             " bytes");
    at::Tensor data = at::empty({st.i}, at::TensorOptions().dtype(st.dtype));
    if (n) std::memcpy(data.data_ptr(), ptr.get(), n);
    return cache_.emplace(st.s, std::move(data)).first->second;
  }

  caffe2::serialize::PyTorchStreamReader& reader_;
  std::string path_;
  std::map<std::string, at::Tensor> cache_;
};

bool looks_like_zip(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return in.gcount() == 4 && std::memcmp(magic, "PK\x03\x04", 4) == 0;
}

// The dict a `key` path selects, with a one-line error when a step is missing.
const Value& select(const Value& root, const std::string& key, const std::string& path) {
  const Value* cur = &root;
  std::string walked;
  size_t start = 0;
  while (!key.empty() && start <= key.size()) {
    const size_t dot = key.find('.', start);
    const std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (cur->kind != Value::Kind::Dict)
      throw Error(path, "key '" + key + "': " + (walked.empty() ? "the file" : "'" + walked + "'") + " holds " +
                            describe(*cur) + ", not a dict");
    const Value* next = nullptr;
    std::vector<std::string> names;
    for (const auto& [k, v] : cur->entries) {
      if (k->kind != Value::Kind::String) continue;
      names.push_back(k->s);
      if (k->s == part) next = v.get();
    }
    if (!next)
      throw Error(path, "key '" + key + "': no entry '" + part + "'" + did_you_mean(part, names) + " in " +
                            (walked.empty() ? "the file's dict" : "'" + walked + "'") + "; it has: " + join(names));
    walked += (walked.empty() ? "" : ".") + part;
    cur = next;
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return *cur;
}

bool all_tensors(const Value& d) {
  if (d.kind != Value::Kind::Dict || d.entries.empty()) return false;
  for (const auto& [k, v] : d.entries)
    if (k->kind != Value::Kind::String || v->kind != Value::Kind::Tensor) return false;
  return true;
}

NamedTensors state_dict_of(const Value& root, const std::string& key, const std::string& path, Storages& storages) {
  const Value& d = select(root, key, path);
  const std::string what = key.empty() ? "the file" : "key '" + key + "'";
  if (d.kind != Value::Kind::Dict) {
    std::string hint = d.kind == Value::Kind::Opaque
                           ? "; a whole pickled model is not read (it would run code): save model.state_dict() instead"
                           : "";
    throw Error(path, what + " holds " + describe(d) + ", not a state dict (name -> tensor)" + hint);
  }
  NamedTensors out;
  std::vector<std::string> nested;  // entries that are themselves state dicts: a checkpoint's "model"
  std::string first_bad;
  for (const auto& [k, v] : d.entries) {
    if (k->kind != Value::Kind::String) throw Error(path, what + " has a key that is " + describe(*k) + ", not a string");
    if (v->kind == Value::Kind::Tensor) {
      out.emplace_back(k->s, storages.tensor(k->s, *v));
      continue;
    }
    if (all_tensors(*v)) nested.push_back(k->s);
    if (first_bad.empty()) first_bad = "'" + k->s + "' is " + describe(*v);
  }
  if (!first_bad.empty()) {
    if (!nested.empty())
      throw Error(path, what + " is a checkpoint dict, not a state dict: its entr" +
                            (nested.size() == 1 ? "y '" + nested[0] + "' holds" : "ies " + join(nested) + " hold") +
                            " tensors; select one with model.init.key (e.g. key: " +
                            (key.empty() ? "" : key + ".") + nested[0] + ")");
    throw Error(path, what + " is not a state dict: entry " + first_bad + ", not a tensor");
  }
  if (out.empty()) throw Error(path, what + " is an empty dict: no tensors to load");
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Writing: the pickle torch.save writes for an OrderedDict of tensors, protocol 2.
class PickleWriter {
 public:
  std::string out;

  void op(char c) { out += c; }
  void global(const char* module, const char* name) {
    out += 'c';
    out += module;
    out += '\n';
    out += name;
    out += '\n';
  }
  void str(const std::string& s) {
    out += 'X';
    put_le(s.size(), 4);
    out += s;
  }
  void integer(int64_t v) {
    if (v >= 0 && v < 256) {
      out += 'K';
      put_le(static_cast<uint64_t>(v), 1);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      out += 'J';
      put_le(static_cast<uint64_t>(static_cast<uint32_t>(static_cast<int32_t>(v))), 4);
    } else {
      out += '\x8a';
      out += '\x08';
      put_le(static_cast<uint64_t>(v), 8);
    }
  }
  void ints(at::IntArrayRef v) {
    op('(');
    for (int64_t x : v) integer(x);
    op('t');
  }
  void empty_ordered_dict() {
    global("collections", "OrderedDict");
    op(')');
    op('R');
  }

 private:
  void put_le(uint64_t v, int n) {
    for (int k = 0; k < n; ++k) out += static_cast<char>((v >> (8 * k)) & 0xff);
  }
};

}  // namespace

bool is_torch_save_archive(const std::string& path) {
  if (!looks_like_zip(path)) return false;
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    return reader.hasRecord("data.pkl") && !reader.hasRecord("constants.pkl");
  } catch (const c10::Error&) {
    return false;
  }
}

NamedTensors read_torch_state_dict(const std::string& path, const std::string& key) {
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path, "cannot open the file");
  }
  if (!looks_like_zip(path))
    throw Error(path, "not a zip archive: not a .pt file of PyTorch >= 1.6 (a file in the older format, or saved "
                      "with _use_new_zipfile_serialization=False, must be re-saved with torch.save(sd, path))");
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    if (reader.hasRecord("constants.pkl") || reader.hasRecord("code/__torch__.py") || !reader.hasRecord("data.pkl")) {
      const bool script = reader.hasRecord("constants.pkl");
      throw Error(path, script ? "a TorchScript archive (torch.jit.save), not a state dict: in Python, save "
                                 "torch.jit.load(path).state_dict() with torch.save"
                               : "a zip archive without data.pkl: not a file written by torch.save");
    }
    if (reader.hasRecord("byteorder")) {
      auto [ptr, n] = reader.getRecord("byteorder");
      const std::string order(static_cast<const char*>(ptr.get()), n);
      if (order != "little") throw Error(path, "tensors stored " + order + "-endian; mtl reads little-endian files");
    }
    auto [pkl_ptr, pkl_size] = reader.getRecord("data.pkl");
    const std::string pkl(static_cast<const char*>(pkl_ptr.get()), pkl_size);

    Storages storages(reader, path);
    ValuePtr root = Unpickler(pkl, [&](const Value& pid) { return storages.persistent_load(pid); }, path).run();
    return state_dict_of(*root, key, path, storages);
  } catch (const c10::Error& e) {
    throw Error(path, "not a readable .pt archive (truncated or damaged?): " + first_line(e.what_without_backtrace()));
  }
}

void write_torch_state_dict(const std::string& path, const NamedTensors& tensors) {
  PickleWriter p;
  std::vector<std::pair<std::string, at::Tensor>> records;
  p.op('\x80');
  p.out += '\x02';  // PROTO 2, as torch.save
  p.empty_ordered_dict();
  p.op('(');
  for (size_t k = 0; k < tensors.size(); ++k) {
    const auto& [name, tensor] = tensors[k];
    const at::Tensor t = tensor.detach().to(at::kCPU).contiguous();
    const char* type = storage_name(t.scalar_type());
    if (!type) throw Error(path, "tensor '" + name + "' has dtype " + std::string(c10::toString(t.scalar_type())) +
                                     ", which mtl does not write to .pt files");
    const std::string key = std::to_string(k);
    p.str(name);
    p.global("torch._utils", "_rebuild_tensor_v2");
    p.op('(');
    p.op('(');  // the persistent id: ('storage', torch.<Type>Storage, key, 'cpu', numel)
    p.str("storage");
    p.global("torch", type);
    p.str(key);
    p.str("cpu");
    p.integer(t.numel());
    p.op('t');
    p.op('Q');
    p.integer(0);  // storage offset
    p.ints(t.sizes());
    p.ints(t.strides());
    p.op('\x89');  // requires_grad False
    p.empty_ordered_dict();  // backward hooks
    p.op('t');
    p.op('R');
    records.emplace_back(key, t);
  }
  p.op('u');
  p.op('.');

  std::string zip;
  try {
    caffe2::serialize::PyTorchStreamWriter writer([&](const void* buf, size_t n) {
      zip.append(static_cast<const char*>(buf), n);
      return n;
    });
    writer.writeRecord("data.pkl", p.out.data(), p.out.size());
    writer.writeRecord("byteorder", "little", 6);
    for (const auto& [key, t] : records)
      writer.writeRecord("data/" + key, t.data_ptr(), static_cast<size_t>(t.numel()) * t.element_size());
    writer.writeEndOfFile();
  } catch (const c10::Error& e) {
    throw Error(path, "cannot write the .pt archive: " + first_line(e.what_without_backtrace()));
  }
  write_file_atomic(path, zip);
}

}  // namespace mtl
