#!/usr/bin/python3
"""An independent safetensors reader/writer (standard library + numpy only) to check mtl's against.

    /usr/bin/python3 tools/safetensors_numpy.py write PATH   # writes the reference tensors below
    /usr/bin/python3 tools/safetensors_numpy.py check PATH   # checks a file mtl wrote holds exactly them

tests/io/safetensors_interop_test.cpp runs both directions and builds the same values in C++; keep the two in step.
numpy has no bfloat16, so BF16 values travel as their raw uint16 bits.
"""
import json
import struct
import sys

import numpy as np


def bf16_bits(values):
    # bfloat16 = the upper half of a float32 (the values below are exact, so no rounding is involved)
    return (np.array(values, dtype="<f4").view("<u4") >> 16).astype("<u2")


def reference():
    """name -> (safetensors dtype, numpy array with the file's byte layout), in the order they are written."""
    r = np.arange(12)
    return {
        "f32.matrix": ("F32", (r * 0.5 - 2.25).astype("<f4").reshape(3, 4)),
        "f64.thirds": ("F64", ((np.arange(5) + 1) / 3.0).astype("<f8")),
        "f16.steps": ("F16", (np.arange(6) * 0.25 - 0.5).astype("<f2").reshape(2, 3)),
        "bf16.halves": ("BF16", bf16_bits(np.arange(6) - 2.5).reshape(3, 2)),
        "i64.big": ("I64", np.array([-(2**62), -1, 0, 2**62 + 7], dtype="<i8")),
        "i32.cube": ("I32", (np.arange(8) * 1000 - 3000).astype("<i4").reshape(2, 2, 2)),
        "i16.extremes": ("I16", np.array([-32768, 0, 32767], dtype="<i2")),
        "i8.extremes": ("I8", np.array([-128, -1, 0, 127], dtype="i1")),
        "u8.bytes": ("U8", np.array([[0, 1], [128, 255]], dtype="u1")),
        "bool.mask": ("BOOL", np.array([i % 3 != 1 for i in range(5)], dtype="?")),
        "scalar": ("F32", np.array(3.5, dtype="<f4")),
        "empty": ("F32", np.zeros((0, 3), dtype="<f4")),
    }


METADATA = {"producer": "safetensors_numpy.py", "unicode": "na\u00efve \u2713", "empty": ""}


def write(path):
    header, blobs, offset = {"__metadata__": METADATA}, [], 0
    for name, (dtype, array) in reference().items():
        data = array.tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    # sorted keys: the header order differs from the order of the data, which readers must not rely on
    text = json.dumps(header, sort_keys=True).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def check(path):
    errors = []
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    if n % 8:
        errors.append(f"header length {n} is not a multiple of 8 (data section not aligned)")
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    data = raw[8 + n :]
    meta = header.pop("__metadata__", {})
    if meta != METADATA:
        errors.append(f"metadata {meta!r} != {METADATA!r}")
    ref = reference()
    if sorted(header) != sorted(ref):
        errors.append(f"tensor names {sorted(header)} != {sorted(ref)}")
    end = 0
    for name in sorted(header, key=lambda k: header[k]["data_offsets"]):
        entry = header[name]
        begin, stop = entry["data_offsets"]
        if begin != end:
            errors.append(f"{name}: data begins at {begin}, expected {end} (holes/overlaps)")
        end = stop
        if name not in ref:
            continue
        dtype, array = ref[name]
        if entry["dtype"] != dtype or entry["shape"] != list(array.shape):
            errors.append(f"{name}: {entry['dtype']} {entry['shape']} != {dtype} {list(array.shape)}")
        elif data[begin:stop] != array.tobytes():
            got = np.frombuffer(data[begin:stop], dtype=array.dtype).reshape(array.shape)
            errors.append(f"{name}: values {got.tolist()} != {array.tolist()}")
    if end != len(data):
        errors.append(f"data section has {len(data)} bytes but the tensors end at {end}")
    for e in errors:
        print(f"safetensors_numpy.py: {path}: {e}", file=sys.stderr)
    return 1 if errors else 0


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("write", "check"):
        print(__doc__, file=sys.stderr)
        return 2
    if sys.argv[1] == "write":
        write(sys.argv[2])
        return 0
    return check(sys.argv[2])


if __name__ == "__main__":
    sys.exit(main())
