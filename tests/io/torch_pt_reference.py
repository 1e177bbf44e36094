#!/usr/bin/python3
"""PyTorch's side of tests/io/torch_state_dict_test.cpp: .pt files written by torch.save, and a check that .pt
files mtl writes are what torch.load expects.

    /usr/bin/python3 tests/io/torch_pt_reference.py make DIR      # DIR/*.pt (good and bad) + DIR/*.safetensors
    /usr/bin/python3 tests/io/torch_pt_reference.py verify PT ST  # torch.load(PT) == the tensors of ST, bitwise
    /usr/bin/python3 tests/io/torch_pt_reference.py wrap ST PT KEY  # torch.save({KEY: state dict of ST, "epoch": 1})

Every good .pt comes with a .safetensors file of the same tensors (written below with the standard library, not
by mtl) so the test compares what mtl reads from the .pt against an independent copy of the values.
"""
import collections
import json
import os
import struct
import sys
import zipfile

import numpy as np
import torch

DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
          torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
          torch.bool: "BOOL"}


def raw(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)  # numpy has no bfloat16: its bits travel as they are
    return t.numpy().tobytes()


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        data = raw(t)
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    header.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], blob[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
            for k, v in header.items()}


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.bn = torch.nn.BatchNorm2d(4)
        self.fc = torch.nn.Linear(4, 2)


class Evil:
    """Unpickling this in Python runs a shell command: mtl must never do so."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, ("touch " + self.marker,))


def state_dict():
    torch.manual_seed(0)
    net = Net()
    net.bn.running_mean.uniform_(-1, 1)
    net.bn.running_var.uniform_(0.5, 2)
    sd = net.state_dict()  # an OrderedDict with _metadata
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) / 7
    sd["view.column"] = base[:, 2]          # a strided view: its storage is the whole of `base`
    sd["view.block"] = base[1:3, 1:5]       # another view of the same storage, at an offset
    sd["view.transposed"] = base.t()
    sd["f64"] = torch.randn(3, 2, dtype=torch.float64)
    sd["f16"] = torch.randn(5).half()
    sd["bf16"] = torch.randn(2, 3).bfloat16()
    sd["i64"] = torch.tensor([-(2**62), -1, 0, 2**62 + 7])
    sd["i32"] = torch.arange(-3, 5, dtype=torch.int32).reshape(2, 2, 2)
    sd["i16"] = torch.tensor([-32768, 0, 32767], dtype=torch.int16)
    sd["i8"] = torch.tensor([-128, -1, 0, 127], dtype=torch.int8)
    sd["u8"] = torch.tensor([[0, 1], [128, 255]], dtype=torch.uint8)
    sd["bool"] = torch.tensor([True, False, True])
    sd["scalar"] = torch.tensor(3.5)
    sd["empty"] = torch.zeros(0, 3)
    return sd


def make(out):
    os.makedirs(out, exist_ok=True)
    sd = state_dict()
    torch.save(sd, os.path.join(out, "state_dict.pt"))
    write_safetensors(os.path.join(out, "state_dict.safetensors"), sd)
    torch.save(sd, os.path.join(out, "protocol4.pt"), pickle_protocol=4)
    net = Net()
    params = net.state_dict(keep_vars=True)  # nn.Parameter values: torch._utils._rebuild_parameter
    torch.save(params, os.path.join(out, "parameters.pt"))
    write_safetensors(os.path.join(out, "parameters.safetensors"), params)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    torch.save({"epoch": 3, "model": net.state_dict(), "optimizer": optimizer.state_dict(), "args": {"lr": 0.1}},
               os.path.join(out, "checkpoint.pt"))
    write_safetensors(os.path.join(out, "checkpoint_model.safetensors"), net.state_dict())
    torch.save({"trainer": {"state": {"model": net.state_dict()}}}, os.path.join(out, "nested.pt"))

    # Files that are not state dicts.
    torch.save(net, os.path.join(out, "whole_model.pt"))
    torch.save({"w": torch.ones(2), "x": Evil(os.path.join(out, "EXECUTED"))}, os.path.join(out, "evil.pt"))
    torch.save(Evil(os.path.join(out, "EXECUTED")), os.path.join(out, "evil_root.pt"))
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), os.path.join(out, "torchscript.pt"))
    torch.save(sd, os.path.join(out, "legacy.pt"), _use_new_zipfile_serialization=False)
    torch.save(collections.OrderedDict(), os.path.join(out, "empty.pt"))
    with open(os.path.join(out, "state_dict.pt"), "rb") as f:
        blob = f.read()
    with open(os.path.join(out, "truncated.pt"), "wb") as f:
        f.write(blob[: len(blob) // 2])
    # A storage record shorter than its tensor needs: rewrite the archive with data/0 cut to 4 bytes.
    with zipfile.ZipFile(os.path.join(out, "state_dict.pt")) as src, \
            zipfile.ZipFile(os.path.join(out, "short_storage.pt"), "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.endswith("/data/0"):
                data = data[:4]
            dst.writestr(info, data)
    print(next(iter(sd)))  # the tensor stored as data/0 (the first one pickled)


def to_torch(dtype, shape, data):
    numpy_dtype = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "BF16": "<i2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
                   "I8": "i1", "U8": "u1", "BOOL": "?"}[dtype]
    t = torch.from_numpy(np.frombuffer(data, dtype=numpy_dtype).copy().reshape(shape))
    return t.view(torch.bfloat16) if dtype == "BF16" else t


def wrap(st, pt, key):
    sd = collections.OrderedDict((k, to_torch(*v)) for k, v in read_safetensors(st).items())
    torch.save({key: sd, "epoch": 1}, pt)


def verify(pt, st):
    loaded = torch.load(pt)
    expected = read_safetensors(st)
    errors = []
    if not isinstance(loaded, collections.OrderedDict):
        errors.append("torch.load returned %s, not an OrderedDict" % type(loaded).__name__)
    if list(loaded) != list(expected):
        errors.append("names %s != %s" % (list(loaded), list(expected)))
    for name, (dtype, shape, data) in expected.items():
        t = loaded.get(name)
        if t is None:
            continue
        if DTYPES.get(t.dtype) != dtype or list(t.shape) != shape:
            errors.append("%s: %s %s != %s %s" % (name, t.dtype, list(t.shape), dtype, shape))
        elif raw(t) != data:
            errors.append("%s: values differ: %s" % (name, t.flatten()[:8].tolist()))
    for e in errors:
        print("torch_pt_reference.py: %s: %s" % (pt, e), file=sys.stderr)
    return 1 if errors else 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "make":
        make(sys.argv[2])
        return 0
    if len(sys.argv) == 5 and sys.argv[1] == "wrap":
        wrap(*sys.argv[2:])
        return 0
    if len(sys.argv) == 4 and sys.argv[1] == "verify":
        return verify(sys.argv[2], sys.argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
