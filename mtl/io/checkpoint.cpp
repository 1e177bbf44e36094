#include "mtl/io/checkpoint.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <ATen/core/Dict.h>
#include <torch/serialize.h>

#include <filesystem>

#include "mtl/core/error.h"
#include "mtl/core/text.h"
#include "mtl/io/atomic_file.h"
#include "mtl/io/archive_check.h"

namespace fs = std::filesystem;

namespace mtl {

namespace {

constexpr const char* kFormat = "mtl-checkpoint-v1";

c10::Dict<std::string, at::Tensor> module_tensors(const torch::nn::Module& m) {
  c10::Dict<std::string, at::Tensor> d;
  for (const auto& kv : m.named_parameters()) d.insert(kv.key(), kv.value().detach());
  for (const auto& kv : m.named_buffers()) d.insert(kv.key(), kv.value().detach());
  return d;
}

void restore_module(const std::string& path, torch::nn::Module& m, const c10::Dict<std::string, at::Tensor>& d) {
  torch::NoGradGuard no_grad;
  std::vector<std::pair<std::string, at::Tensor>> targets;
  for (const auto& kv : m.named_parameters()) targets.emplace_back(kv.key(), kv.value());
  for (const auto& kv : m.named_buffers()) targets.emplace_back(kv.key(), kv.value());
  std::vector<std::string> missing;
  for (auto& [name, t] : targets) {
    if (!d.contains(name)) {
      missing.push_back(name);
      continue;
    }
    at::Tensor src = d.at(name);
    if (src.sizes() != t.sizes() || src.scalar_type() != t.scalar_type())
      throw Error(path, "tensor '" + name + "' has shape " + shape_text(src.sizes()) + " " +
                            std::string(c10::toString(src.scalar_type())) + " in the checkpoint but " +
                            shape_text(t.sizes()) + " " + c10::toString(t.scalar_type()) +
                            " in the model (was it trained with another model config?)");
  }
  if (!missing.empty())
    throw Error(path, "checkpoint lacks " + std::to_string(missing.size()) + " model tensor(s), e.g. '" +
                          missing[0] + "' (was it trained with another model config?)");
  if (static_cast<size_t>(d.size()) != targets.size()) {
    std::set<std::string> known;
    for (auto& kv : targets) known.insert(kv.first);
    for (const auto& kv : d)
      if (!known.count(kv.key()))
        throw Error(path, "checkpoint has tensor '" + kv.key() +
                              "' that the model lacks (was it trained with another model config?)");
  }
  for (auto& [name, t] : targets) t.copy_(d.at(name));
}

}  // namespace

void save_checkpoint(const std::string& path, const CheckpointRefs& refs, const TrainPosition& pos) {
  TORCH_CHECK(refs.model, "save_checkpoint needs a model");
  torch::serialize::OutputArchive archive;
  archive.write("format", c10::IValue(std::string(kFormat)));
  archive.write("model", c10::IValue(module_tensors(*refs.model)));
  archive.write("position", c10::IValue(std::vector<int64_t>{pos.step, pos.epoch, pos.batch_in_epoch}));
  archive.write("epoch_loss_sum", c10::IValue(pos.epoch_loss_sum));
  archive.write("epoch_examples", c10::IValue(pos.epoch_examples));
  if (pos.workers > 0) archive.write("thread_plan", c10::IValue(std::vector<int64_t>{pos.workers, pos.intra_op_threads}));
  if (pos.log_bytes >= 0) archive.write("log_bytes", c10::IValue(pos.log_bytes));
  archive.write("rng", at::detail::getDefaultCPUGenerator().get_state());
  if (refs.optimizer) {
    torch::serialize::OutputArchive opt;
    refs.optimizer->save(opt);
    archive.write("optimizer", opt);
  }
  if (refs.weighting) {
    torch::serialize::OutputArchive w;
    refs.weighting->save(w);
    archive.write("weighting", w);
  }
  write_atomic(path, [&](const std::string& tmp) {
    // LibTorch's own file writer ends the zip archive in its destructor, where a write error (a full disk, a
    // file size limit) terminates the process; so the archive goes through a sink that never fails towards
    // LibTorch and remembers the first error for us to report.
    std::FILE* file = std::fopen(tmp.c_str(), "wb");
    if (file == nullptr) throw Error(path, std::string("cannot write checkpoint: ") + std::strerror(errno));
    int error = 0;
    try {
      archive.save_to([&](const void* data, size_t n) -> size_t {
        if (error == 0 && n > 0 && std::fwrite(data, 1, n, file) != n) error = errno != 0 ? errno : EIO;
        return n;
      });
    } catch (const c10::Error& e) {
      std::fclose(file);
      throw Error(path, "cannot write checkpoint: " + first_line(e.what_without_backtrace()));
    }
    if (std::fflush(file) != 0 && error == 0) error = errno;
    if (std::fclose(file) != 0 && error == 0) error = errno;
    if (error != 0) throw Error(path, std::string("cannot write checkpoint: ") + std::strerror(error));
  });
}

std::string resolve_checkpoint_path(const std::string& path) {
  if (fs::is_directory(path)) return (fs::path(path) / "checkpoint.pt").string();
  return path;
}

namespace {

// Opens `path` as an mtl checkpoint (existing, readable, our format) and returns its model tensors; the
// archive is left open for the rest. Shared by load_checkpoint and read_checkpoint_model_tensors.
c10::Dict<std::string, at::Tensor> open_checkpoint(const std::string& path, torch::serialize::InputArchive& archive) {
  if (!fs::exists(path)) throw Error(path, "checkpoint file does not exist");
  try {
    check_archive_records(path);  // LibTorch trusts pickle lengths and module sources (mtl/io/archive_check.h)
    archive.load_from(path);
  } catch (const Error& e) {
    throw Error(path, std::string("not a readable mtl checkpoint: ") + e.what());
  } catch (const c10::Error& e) {
    throw Error(path, "not a readable mtl checkpoint (" + first_line(e.what_without_backtrace()) + ")");
  } catch (const std::exception& e) {  // LibTorch's unpickler also throws std:: exceptions on damaged data
    throw Error(path, "not a readable mtl checkpoint (" + first_line(e.what()) + ")");
  }
  try {
    c10::IValue format;
    archive.read("format", format);
    if (!format.isString() || format.toStringRef() != kFormat)
      throw Error(path, std::string("not an mtl checkpoint (expected format ") + kFormat + ")");
    c10::IValue model;
    archive.read("model", model);
    if (!model.isGenericDict()) throw Error(path, "checkpoint's 'model' entry is not a tensor dictionary");
    return c10::impl::toTypedDict<std::string, at::Tensor>(model.toGenericDict());
  } catch (const c10::Error& e) {
    throw Error(path, "damaged or incompatible checkpoint (" + first_line(e.what_without_backtrace()) + ")");
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(path, "damaged or incompatible checkpoint (" + first_line(e.what()) + ")");
  }
}

}  // namespace

NamedTensors read_checkpoint_model_tensors(const std::string& path) {
  torch::serialize::InputArchive archive;
  NamedTensors out;
  for (const auto& kv : open_checkpoint(path, archive)) out.emplace_back(kv.key(), kv.value());
  return out;
}

TrainPosition load_checkpoint(const std::string& path, const CheckpointRefs& refs, bool restore_rng) {
  torch::serialize::InputArchive archive;
  c10::Dict<std::string, at::Tensor> tensors = open_checkpoint(path, archive);
  TrainPosition pos;
  try {
    restore_module(path, *refs.model, tensors);
    c10::IValue position;
    archive.read("position", position);
    auto p = position.toIntVector();
    if (p.size() != 3) throw Error(path, "checkpoint's training position is malformed");
    pos.step = p[0];
    pos.epoch = p[1];
    pos.batch_in_epoch = p[2];
    c10::IValue sums, counts;
    archive.read("epoch_loss_sum", sums);
    archive.read("epoch_examples", counts);
    pos.epoch_loss_sum = sums.toDoubleVector();
    pos.epoch_examples = counts.toDoubleVector();
    c10::IValue plan;  // absent in checkpoints of explicit thread counts and of earlier versions
    if (archive.try_read("thread_plan", plan)) {
      auto v = plan.toIntVector();
      if (v.size() != 2 || v[0] < 1 || v[1] < 1) throw Error(path, "checkpoint's thread plan is malformed");
      pos.workers = v[0];
      pos.intra_op_threads = v[1];
    }
    c10::IValue log_bytes;  // absent in checkpoints of earlier versions and of runs without a log
    if (archive.try_read("log_bytes", log_bytes)) {
      if (!log_bytes.isInt() || log_bytes.toInt() < 0) throw Error(path, "checkpoint's log size is malformed");
      pos.log_bytes = log_bytes.toInt();
    }
    if (refs.optimizer) {
      torch::serialize::InputArchive opt;
      archive.read("optimizer", opt);
      refs.optimizer->load(opt);
    }
    if (refs.weighting) {
      torch::serialize::InputArchive w;
      archive.read("weighting", w);
      refs.weighting->load(w);
    }
    if (restore_rng) {
      at::Tensor rng;
      archive.read("rng", rng);
      at::Generator gen = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(rng);
    }
  } catch (const c10::Error& e) {
    throw Error(path, "damaged or incompatible checkpoint (" + first_line(e.what_without_backtrace()) + ")");
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(path, "damaged or incompatible checkpoint (" + first_line(e.what()) + ")");
  }
  return pos;
}

}  // namespace mtl
