#include "mtl/data/text/sentencepiece_tokenizer.h"

#include <dlfcn.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "mtl/core/batch.h"
#include "mtl/core/error.h"
#include "mtl/data/text/sentencepiece_plugin.h"
#include "mtl/io/atomic_file.h"

#ifndef MTL_SENTENCEPIECE_PLUGIN_BUILD
#define MTL_SENTENCEPIECE_PLUGIN_BUILD ""
#endif
#ifndef MTL_SENTENCEPIECE_PLUGIN_INSTALL
#define MTL_SENTENCEPIECE_PLUGIN_INSTALL ""
#endif

// Sanitizer builds (tools/sanitize.sh; GCC defines __SANITIZE_*__, Clang answers __has_feature).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MTL_SANITIZER_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define MTL_SANITIZER_BUILD 1
#endif
#endif
#ifndef MTL_SANITIZER_BUILD
#define MTL_SANITIZER_BUILD 0
#endif

namespace mtl {

bool sentencepiece_blocked_by_sanitizers() { return MTL_SANITIZER_BUILD != 0; }

namespace {

struct Plugin {
  MtlSpmCreateFn create = nullptr;
  MtlSpmTrainFn train = nullptr;
};

Plugin open_plugin() {
  if (sentencepiece_blocked_by_sanitizers())  // the sanitizers' runtime would abort the process in dlopen
    throw Error("tokenizer", "SentencePiece support is unavailable in a sanitizer build: its plugin needs "
                             "dlopen(RTLD_DEEPBIND), which the sanitizer runtimes refuse "
                             "(github.com/google/sanitizers/issues/611)");
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("MTL_SENTENCEPIECE_PLUGIN"); env && *env)
    candidates.push_back(env);
  else
    candidates = {MTL_SENTENCEPIECE_PLUGIN_BUILD, MTL_SENTENCEPIECE_PLUGIN_INSTALL};
  std::vector<std::string> tried;
  for (const auto& path : candidates) {
    if (path.empty()) continue;
    if (::access(path.c_str(), R_OK) != 0) {
      tried.push_back(path + " (" + std::strerror(errno) + ")");
      continue;
    }
    // RTLD_DEEPBIND: SentencePiece must bind to its bundled protobuf, not to libtorch's (see the header).
    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (!handle) {
      tried.push_back(path + " (" + ::dlerror() + ")");
      continue;
    }
    auto abi = reinterpret_cast<MtlSpmAbiFn>(::dlsym(handle, "mtl_spm_abi"));
    Plugin p;
    p.create = reinterpret_cast<MtlSpmCreateFn>(::dlsym(handle, "mtl_spm_create"));
    p.train = reinterpret_cast<MtlSpmTrainFn>(::dlsym(handle, "mtl_spm_train"));
    if (!abi || !p.create || !p.train || abi() != detail::kSentencePiecePluginAbi) {
      tried.push_back(path + " (not a matching mtl SentencePiece plugin)");
      ::dlclose(handle);
      continue;
    }
    return p;  // never unloaded: backends live until exit
  }
  throw Error("tokenizer", "SentencePiece support is unavailable: cannot load the plugin libmtl_sentencepiece.so; tried " +
                               join(tried, "; ") + ". Set MTL_SENTENCEPIECE_PLUGIN to its path");
}

const Plugin& plugin() {
  static const Plugin p = open_plugin();  // a throw leaves it uninitialised: the next call tries again
  return p;
}

std::shared_ptr<detail::SentencePieceBackend> make_backend(const std::string& serialized, const std::string& origin) {
  std::shared_ptr<detail::SentencePieceBackend> b(plugin().create());
  std::string error;
  if (!b->load(serialized, &error)) throw Error(origin, "not a valid SentencePiece model: " + error);
  return b;
}

// Writes one training text per line; newlines become spaces and long texts are split at spaces so that
// SentencePiece (which skips lines over max_sentence_length bytes) sees all of them.
constexpr size_t kMaxLine = 8192;
void write_training_line(std::ostream& out, const std::string& text) {
  std::string t = text;
  std::replace(t.begin(), t.end(), '\n', ' ');
  std::replace(t.begin(), t.end(), '\r', ' ');
  size_t pos = 0;
  while (t.size() - pos > kMaxLine) {
    size_t cut = t.rfind(' ', pos + kMaxLine);
    if (cut == std::string::npos || cut <= pos) {
      cut = pos + kMaxLine;
      while (cut > pos && (static_cast<unsigned char>(t[cut]) & 0xC0) == 0x80) --cut;  // UTF-8 boundary
    }
    out.write(t.data() + pos, static_cast<std::streamsize>(cut - pos));
    out.put('\n');
    pos = cut;
    while (pos < t.size() && t[pos] == ' ') ++pos;
  }
  out.write(t.data() + pos, static_cast<std::streamsize>(t.size() - pos));
  out.put('\n');
}

std::string format_double(double v) {
  std::ostringstream s;
  s.precision(17);
  s << v;
  return s.str();
}

}  // namespace

bool sentencepiece_available(std::string* why) {
  try {
    plugin();
    return true;
  } catch (const Error& e) {
    if (why) *why = e.what();
    return false;
  }
}

SentencePieceTokenizer::SentencePieceTokenizer(std::shared_ptr<detail::SentencePieceBackend> backend,
                                               TokenizerOptions options)
    : backend_(std::move(backend)), options_(std::move(options)) {
  options_.type = "sentencepiece";
}

std::shared_ptr<SentencePieceTokenizer> SentencePieceTokenizer::train(const TokenizerOptions& options,
                                                                      const TextCorpus& corpus) {
  const Plugin& p = plugin();
  // The corpus goes to a temporary file: SentencePiece reads its input itself, and a file keeps the texts
  // streamed on our side.
  std::string tmpl = (std::filesystem::temp_directory_path() / "mtl-spm-corpus-XXXXXX").string();
  int fd = ::mkstemp(tmpl.data());
  if (fd < 0) throw Error(tmpl, std::string("cannot create a temporary file for the tokenizer corpus: ") + std::strerror(errno));
  ::close(fd);
  struct Remove {
    std::string path;
    ~Remove() { std::remove(path.c_str()); }
  } remove{tmpl};

  int64_t texts = 0, nonblank = 0;
  {
    std::ofstream out(tmpl, std::ios::binary | std::ios::trunc);
    corpus([&](const std::string& text) {
      ++texts;
      if (text.find_first_not_of(" \t\r\n") != std::string::npos) ++nonblank;
      write_training_line(out, text);
    });
    out.flush();
    if (!out) throw Error(tmpl, "cannot write the tokenizer corpus (disk full?)");
  }
  if (nonblank == 0)
    throw Error("tokenizer", "no text to train SentencePiece on (" + std::to_string(texts) + " texts, all empty)");

  unsigned threads = std::max(1u, std::min(16u, std::thread::hardware_concurrency()));
  std::vector<std::pair<std::string, std::string>> flags = {
      {"input", tmpl},
      {"model_type", options.model_type},
      {"vocab_size", std::to_string(options.vocab_size)},
      {"character_coverage", format_double(options.character_coverage)},
      {"hard_vocab_limit", "false"},
      {"max_sentence_length", std::to_string(2 * kMaxLine)},
      {"unk_id", "0"},
      {"bos_id", "-1"},
      {"eos_id", "-1"},
      {"pad_id", "-1"},
      {"num_threads", std::to_string(threads)},
      {"minloglevel", "2"},  // quiet: errors come back as the status
  };
  std::string model, error;
  if (!p.train(&flags, &model, &error)) throw Error("tokenizer", "SentencePiece training failed: " + error);
  TokenizerOptions o = options;
  o.model.clear();
  return std::shared_ptr<SentencePieceTokenizer>(
      new SentencePieceTokenizer(make_backend(model, "tokenizer (trained model)"), o));
}

std::shared_ptr<SentencePieceTokenizer> SentencePieceTokenizer::load_model(const std::string& path,
                                                                           const TokenizerOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path, std::string("cannot open the SentencePiece model: ") + std::strerror(errno));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error(path, "read error");
  if (bytes.empty()) throw Error(path, "empty SentencePiece model file");
  TokenizerOptions o = options;
  o.model = path;
  return std::shared_ptr<SentencePieceTokenizer>(new SentencePieceTokenizer(make_backend(bytes, path), o));
}

std::vector<int64_t> SentencePieceTokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  for (int p : backend_->encode(text)) {
    if (backend_->is_unknown(p))
      ids.push_back(kUnkTokenId);
    else if (!backend_->is_control(p))
      ids.push_back(kFirstPieceId + p);
  }
  return ids;
}

std::string SentencePieceTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::vector<int> pieces;
  for (int64_t id : ids) {
    if (id == kPadTokenId || id == kClsTokenId) continue;
    if (id == kUnkTokenId) {
      if (backend_->unk_id() >= 0) pieces.push_back(backend_->unk_id());
      continue;
    }
    if (id < 0 || id >= vocab_size())
      throw Error("tokenizer", "token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                                   std::to_string(vocab_size()) + ")");
    pieces.push_back(static_cast<int>(id - kFirstPieceId));
  }
  return backend_->decode(pieces);
}

std::string SentencePieceTokenizer::piece(int64_t id) const {
  static const char* const reserved[] = {"<pad>", "<unk>", "<cls>"};
  if (id >= 0 && id < kFirstPieceId) return reserved[id];
  if (id < 0 || id >= vocab_size())
    throw Error("tokenizer", "token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                                 std::to_string(vocab_size()) + ")");
  return backend_->id_to_piece(static_cast<int>(id - kFirstPieceId));
}

int64_t SentencePieceTokenizer::vocab_size() const { return kFirstPieceId + backend_->piece_size(); }

void SentencePieceTokenizer::save(const std::string& dir) const {
  ensure_writable_dir(dir);
  write_file_atomic(dir + "/sentencepiece.model", backend_->serialized());
  nlohmann::json j = {{"type", "sentencepiece"},
                      {"model_type", options_.model_type},
                      {"vocab_size", options_.vocab_size},
                      {"character_coverage", options_.character_coverage},
                      {"pieces", backend_->piece_size()},
                      {"model", "sentencepiece.model"}};
  write_file_atomic(dir + "/tokenizer.json", j.dump(2) + "\n");
}

}  // namespace mtl
