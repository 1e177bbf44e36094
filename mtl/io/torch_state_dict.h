// PyTorch state dicts as `torch.save(model.state_dict(), "model.pt")` writes them (the zip format of PyTorch >= 1.6):
// mtl reads them to initialise models from pretrained weights and writes them so that Python's `torch.load`
// reads an mtl model.
//
// A .pt file's `data.pkl` is a Python pickle, and a pickle is a program: loading it with Python's `pickle` can run
// any code. mtl runs none. Its reader knows only the opcodes and the few globals a state dict is made of
// (collections.OrderedDict, torch._utils._rebuild_tensor_v2 / _rebuild_parameter, the torch.*Storage types) and
// rejects anything else with a one-line error naming what it found; tensor data are checked against their
// storage records before any byte is copied.
//   for (auto& [name, t] : mtl::read_torch_state_dict("resnet18.pt")) ...
//   mtl::write_torch_state_dict("model.pt", {{"fc.weight", w}});
#pragma once

#include <string>

#include "mtl/io/safetensors.h"  // NamedTensors

namespace mtl {

/// Reads the tensors of a state dict saved by torch.save (CPU tensors owning their memory, in the file's order).
/// `key` selects a state dict nested in a checkpoint dict ("model" for torch.save({"model": sd, "epoch": 3}));
/// dotted for deeper nesting ("state.model"). Throws mtl::Error(path, "...") with a one-line message for a file
/// that is not such a state dict (a pickled nn.Module, a TorchScript archive, the pre-1.6 format, a damaged
/// archive), naming the tensor where one is at fault, and saying which `key` to give for a checkpoint dict.
NamedTensors read_torch_state_dict(const std::string& path, const std::string& key = "");

/// True when `path` is a zip archive as torch.save writes it: data.pkl without TorchScript's constants.pkl (mtl's
/// own checkpoints and torch.jit.save files have it). False for anything else, damaged archives included.
bool is_torch_save_archive(const std::string& path);

/// Writes `tensors` as an OrderedDict state dict that `torch.load(path)` returns as it was (contiguous CPU
/// tensors, every dtype LibTorch 1.13 shares with PyTorch). Atomic: an existing file is never left half-written.
void write_torch_state_dict(const std::string& path, const NamedTensors& tensors);

}  // namespace mtl
