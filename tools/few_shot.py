#!/usr/bin/env python3
"""Few-shot benchmark: MAML, first-order MAML and Reptile (mtl train of a meta: config) against two baselines,
each scored by `mtl adapt` on the same N-way K-shot episodes of classes held out from meta-training:
  (a) scratch: the config's initial weights, every parameter trained on the K shots;
  (b) fine-tuned trunk: a model trained as usual (supervised, one head over the meta-training classes, the
      same backbone) whose trunk is kept and a fresh N-way head trained on the K shots (and, in a second row,
      every parameter fine-tuned).
Prints (and writes with --out) a Markdown table: accuracy on the query sets, mean and 95% interval over the
episodes, for each K, and the time each method took (training and adaptation).

    /usr/bin/python3 tools/few_shot.py --mtl build/mtl                       # configs/fashion_maml.yaml
    /usr/bin/python3 tools/few_shot.py --mtl build/mtl --shots 1,5 --episodes 200 --out few_shot.md
    /usr/bin/python3 tools/few_shot.py --mtl build/mtl --quick                # a smoke test (seconds)
    /usr/bin/python3 tools/few_shot.py --mtl build/mtl --config configs/sotu_maml.yaml   # text: presidents

A text config (data.type text, JSONL) has one task; its baseline (b) trains on the training file without the
held-out classes' passages (data_cache/few_shot/pretrain_train.jsonl).
"""
import argparse
import json
import os
import subprocess
import sys
import time

import yaml  # python3-yaml (Debian)


def run(cmd, log):
    start = time.time()
    with open(log, "w") as out:
        code = subprocess.call(cmd, stdout=out, stderr=subprocess.STDOUT)
    if code != 0:
        sys.exit("few_shot.py: failed (%d): %s\n  see %s" % (code, " ".join(cmd), log))
    return time.time() - start


def text_pretrain_data(cfg, meta, workdir):
    """Baseline (b) on a text dataset (JSONL): its training file without the passages of the held-out classes,
    and the label's full class list (sorted, as mtl orders them), so that the held-out names still resolve when
    the pre-trained trunk is adapted to them."""
    data = cfg["data"]
    tasks = list(cfg["tasks"].values())
    if len(tasks) != 1:
        sys.exit("few_shot.py: a text config needs exactly one task (the N-way label)")
    label = tasks[0].get("label", list(cfg["tasks"])[0])
    rows = [json.loads(line) for line in open(data["train"]) if line.strip()]
    names = sorted({str(r[label]) for r in rows if r.get(label) is not None})
    held = {names[int(c)] if str(c).isdigit() else str(c) for c in meta.get("test_classes", [])}
    train = meta.get("classes", [])
    keep = {names[int(c)] if str(c).isdigit() else str(c) for c in train} if train else set(names) - held
    out = os.path.join(workdir, "pretrain_train.jsonl")
    with open(out, "w") as f:
        for r in rows:
            if str(r.get(label)) in keep:
                f.write(json.dumps(r) + "\n")
    labels = {k: dict(v or {}) for k, v in data["labels"].items() if k == label}
    labels[label]["classes"] = names
    return dict(data, train=out, labels=labels)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mtl", required=True, help="the mtl executable")
    p.add_argument("--config", default="configs/fashion_maml.yaml", help="a config with a meta: section")
    p.add_argument("--methods", default="maml,fomaml,reptile")
    p.add_argument("--shots", default="1,5", help="K values to evaluate")
    p.add_argument("--episodes", type=int, default=200, help="test episodes per cell")
    p.add_argument("--meta-steps", type=int, default=0, help="meta steps (0: the config's)")
    p.add_argument("--pretrain-epochs", type=int, default=5, help="epochs of the supervised baseline (b)")
    p.add_argument("--baseline-steps", type=int, default=100, help="adaptation steps of the baselines")
    p.add_argument("--threads", type=int, default=0, help="trainer.threads (0: the config's)")
    p.add_argument("--workdir", default="data_cache/few_shot")
    p.add_argument("--out", default="", help="also write the table (Markdown) and a .json beside it")
    p.add_argument("--quick", action="store_true", help="smoke test: 3 meta steps, 1 epoch, 10 episodes")
    a = p.parse_args()
    if a.quick:
        a.meta_steps, a.pretrain_epochs, a.episodes, a.baseline_steps = 3, 1, 10, 5
    os.makedirs(a.workdir, exist_ok=True)
    cfg = yaml.safe_load(open(a.config))
    meta = cfg["meta"]
    common = ["--set", "trainer.threads=%d" % a.threads] if a.threads else []
    if a.quick and cfg["data"].get("type") != "text":
        common += ["--set", "data.train_size=3000", "--set", "data.test_size=1000"]
    shots = [int(k) for k in a.shots.split(",")]
    rows = []  # (label, train seconds, {K: result})

    def adapt(label, train_seconds, start_args, extra):
        cells = {}
        for k in shots:
            slug = "".join(ch if ch.isalnum() else "_" for ch in label).strip("_")
            out = os.path.join(a.workdir, "%s_%dshot.json" % (slug, k))
            cmd = [a.mtl, "adapt", a.config, *start_args, "--shots", str(k), "--episodes", str(a.episodes),
                   "--json", out, *common, *extra]
            run(cmd, out + ".log")
            cells[k] = json.load(open(out))
        rows.append((label, train_seconds, cells))

    for m in a.methods.split(","):
        run_dir = os.path.join(a.workdir, m)
        cmd = [a.mtl, "train", a.config, "-q", "--set", "meta.method=" + m, "--set", "trainer.run_dir=" + run_dir,
               *common]
        if a.meta_steps:
            cmd += ["--set", "meta.steps=%d" % a.meta_steps]
        if os.path.exists(run_dir):
            subprocess.call(["rm", "-rf", run_dir])
        seconds = run(cmd, run_dir + ".log")
        adapt(m, seconds, ["--checkpoint", run_dir], [])

    adapt("scratch (a)", 0.0, ["--scratch"], ["--adapt", "all", "--steps", str(a.baseline_steps)])

    # (b): the same data and backbone, trained as usual on the meta-training classes (one head over all 10
    # labels; only those classes occur), then a fresh N-way head on the K shots.
    pre = {k: v for k, v in cfg.items() if k not in ("meta", "tasks", "optimizer", "trainer")}
    if cfg["data"].get("type") == "text":
        pre["data"] = text_pretrain_data(cfg, meta, a.workdir)
    else:
        pre["data"] = dict(cfg["data"], classes=meta.get("classes", []))
    pre["tasks"] = {name: {"label": t.get("label", name)} for name, t in cfg["tasks"].items()}
    pre["optimizer"] = {"type": "adam", "lr": 0.001}
    pre["trainer"] = {"epochs": a.pretrain_epochs, "batch_size": 128, "seed": 0,
                      "run_dir": os.path.join(a.workdir, "pretrain"), "eval_interval": 0}
    pre["baselines"] = "none"
    pre_path = os.path.join(a.workdir, "pretrain.yaml")
    yaml.safe_dump(pre, open(pre_path, "w"), sort_keys=False)
    if os.path.exists(pre["trainer"]["run_dir"]):
        subprocess.call(["rm", "-rf", pre["trainer"]["run_dir"]])
    seconds = run([a.mtl, "train", pre_path, "-q", *common], os.path.join(a.workdir, "pretrain.log"))
    start = ["--checkpoint", pre["trainer"]["run_dir"], "--trunk-only"]
    adapt("fine-tuned trunk, new head (b)", seconds, start, ["--adapt", "heads", "--steps", str(a.baseline_steps)])
    adapt("fine-tuned trunk, all (b)", seconds, start, ["--adapt", "all", "--steps", str(a.baseline_steps)])

    ways = meta.get("ways", 0)
    title = ("%s: %d-way episodes of held-out classes %s, %d episodes per cell; accuracy on the query sets (%d per "
             "class), mean +- 95%% interval; MAML-family rows adapt with meta.test_inner_steps = %s, the baselines "
             "with %d steps" % (a.config, ways, meta.get("test_classes"), a.episodes, meta.get("query", 15),
                                meta.get("test_inner_steps", meta.get("inner_steps", 5)), a.baseline_steps))
    lines = [title, "", "| method | training (s) | " + " | ".join("%d-shot accuracy | adapt (s)" % k for k in shots) + " |",
             "|---|---|" + "---|---|" * len(shots)]
    for label, secs, cells in rows:
        cols = ["%.3f +- %.3f | %.1f" % (c["accuracy"], c["accuracy_ci95"], c["seconds"]) for c in (cells[k] for k in shots)]
        lines.append("| %s | %.0f | %s |" % (label, secs, " | ".join(cols)))
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        open(a.out, "w").write(text)
        json.dump([{"method": l, "train_seconds": s, "cells": c} for l, s, c in rows],
                  open(os.path.splitext(a.out)[0] + ".json", "w"), indent=2)


if __name__ == "__main__":
    main()
