#!/usr/bin/python3
"""Writes the fuzz targets' seed corpora into tests/fuzz/corpus/<target>/: small valid inputs of each format
(and a few near misses), so the fuzzers start from files that reach deep into the readers. The checkpoint seed
comes from the built checkpoint target (`MTL_FUZZ_WRITE_SEED`), the .pt seed from PyTorch (python3-torch).

  /usr/bin/python3 tests/fuzz/make_corpus.py [--fuzz-build build-fuzz]
"""
import argparse
import gzip
import json
import os
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def idx(dtype_code, fmt, dims, values):
    head = struct.pack(">BBBB", 0, 0, dtype_code, len(dims)) + b"".join(struct.pack(">I", d) for d in dims)
    return head + b"".join(struct.pack(">" + fmt, v) for v in values)


def safetensors(tensors, metadata=None):
    header, data = {}, b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--fuzz-build", default=os.path.join(ROOT, "build-fuzz"))
    args = p.parse_args()

    # config: the example configs, and one with --set overrides after NUL bytes.
    for name in ("multi_fashion.yaml", "sotu.yaml", "joint_fashion_sotu.yaml"):
        path = os.path.join(ROOT, "configs", name)
        if os.path.exists(path):
            put("config", name, open(path, "rb").read())
    put("config", "sets.yaml", "trainer: {epochs: 2, seed: &s 3}\nmodel: {backbone: lenet}\ntasks: {a: {}, b: *s}\n"
        "\0trainer.epochs=5\0model.backbone.channels=[4, 8]\0tasks.c={weight: 2}")
    put("config", "anchors.yaml", "base: &b {lr: 0.1, momentum: 0.9}\noptimizer: *b\nsweep: {grid: ['a=1,2'], seeds: 2}\n")

    # idx: images (ubyte, 3 dims) and labels (1 dim), plain and gzip; an int32 and a float tensor.
    images = idx(0x08, "B", [2, 3, 3], list(range(18)))
    labels = idx(0x08, "B", [4], [0, 1, 2, 9])
    put("idx", "images.idx", images)
    put("idx", "labels.idx", labels)
    put("idx", "images.idx.gz", gzip.compress(images, mtime=0))
    put("idx", "int32.idx", idx(0x0C, "i", [2, 2], [1, -2, 3, -4]))
    put("idx", "float.idx", idx(0x0D, "f", [3], [0.5, -1.0, 2.25]))

    # csv: features and two labels (a class, b real), quoting, an empty field.
    put("csv", "plain.csv", "x1,x2,a,b\n1,2,cat,0.5\n3,4,dog,1.5\n5,6,cat,-2\n")
    put("csv", "quoted.csv", 'x1,"x 2",a,b\r\n1.5e3,"2",cat,0\r\n"-3",4,"d,og",1\r\n')
    put("csv", "short_row.csv", "x1,a,b\n1,cat\n2,dog,3\n")

    # jsonl: text records with a class label c and a real label r.
    put("jsonl", "records.jsonl", '{"text": "The union is strong.", "c": "a", "r": 1.5}\n'
        '{"text": "We shall overcome, together!", "c": "b", "r": -0.25}\n{"text": "", "c": "a", "r": 0}\n')
    put("jsonl", "unicode.jsonl", '{"text": "caf\\u00e9 na\\u00efve \\ud83d\\ude00", "c": "x", "r": 2}\n'
        '{"c": "y", "r": 1, "text": "tab\\tand newline\\n"}\n')

    # conll: token, pos and ner columns; blank lines between sentences; a document marker.
    put("conll", "sentences.conll", "-DOCSTART- -X- O\n\nEU NNP B-ORG\nrejects VBZ O\nGerman JJ B-MISC\n\n"
        "Peter NNP B-PER\nBlackburn NNP I-PER\n")
    put("conll", "tabs.conll", "a\tDT\tO\nb\tNN\tB-LOC\n\n\nc\tNN\tI-LOC\n")

    # vocab: tokenizer.json NUL vocab.txt (as `mtl train` saves a word tokenizer).
    tok = json.dumps({"lowercase": True, "max_size": 100, "min_freq": 1, "type": "word", "vocab": "vocab.txt",
                      "vocab_size": 9}, indent=2)
    put("vocab", "word.bin", tok + "\0" + "<pad>\n<unk>\n<cls>\nthe\nquick\nfox\n,\n!\n12\n")
    put("vocab", "upper.bin", tok.replace("true", "false") + "\0" + "<pad>\n<unk>\n<cls>\nThe\nÜnïcödé\n")

    # safetensors: two tensors and metadata; an empty tensor; bf16.
    put("safetensors", "two.safetensors", safetensors(
        {"w": ("F32", [2, 2], struct.pack("<4f", 1, 2, 3, 4)), "b": ("I64", [2], struct.pack("<2q", 7, -7))},
        {"format": "pt"}))
    put("safetensors", "empty.safetensors", safetensors({"e": ("F32", [0, 3], b""),
                                                          "h": ("BF16", [2], b"\x80\x3f\x00\x40")}))

    # torch .pt: a state dict saved by PyTorch itself.
    code = ("import torch, sys\n"
            "torch.manual_seed(0)\n"
            "m = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))\n"
            "torch.save(m.state_dict(), sys.argv[1] + '/state_dict.pt')\n"
            "torch.save({'model': m.state_dict(), 'epoch': 3}, sys.argv[1] + '/nested.pt')\n")
    d = os.path.join(HERE, "corpus", "torch_pt")
    os.makedirs(d, exist_ok=True)
    r = subprocess.run(["/usr/bin/python3", "-c", code, d], capture_output=True, text=True)
    if r.returncode != 0:
        print("torch_pt: skipped (python3-torch: %s)" % r.stderr.strip()[-200:], file=sys.stderr)

    # checkpoint: written by the checkpoint target itself.
    exe = os.path.join(args.fuzz_build, "fuzz_checkpoint")
    if os.path.exists(exe):
        d = os.path.join(HERE, "corpus", "checkpoint")
        os.makedirs(d, exist_ok=True)
        subprocess.run([exe], env=dict(os.environ, MTL_FUZZ_WRITE_SEED=os.path.join(d, "small.pt")), check=True)
    else:
        print("checkpoint: skipped (build %s first: tools/fuzz.sh build)" % exe, file=sys.stderr)


if __name__ == "__main__":
    main()
