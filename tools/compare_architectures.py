#!/usr/bin/python3
"""Train one config with every multi-task architecture (same seed, data, budget and weighting) and print a Markdown table.

  /usr/bin/python3 tools/compare_architectures.py [--config configs/multi_fashion.yaml] [--epochs 10]
      [--train-size 60000] [--test-size 10000] [--threads 2] [--architectures hps,mmoe,cgc,ple]
      [--weighting ew|pcgrad:space=representation|...] [--out table.md] [--mtl build/mtl] [--set KEY=VALUE] [--workdir DIR] [--report]
      [--no-baselines] [--max-steps N]

For each architecture (a spec may carry options: `mmoe:experts=4`, `ple:levels=3`) it runs
`mtl train CONFIG --set model.architecture={type: A, ...}` in its own run directory and reads the run's metrics
log: every task's first metric on the test split after the last epoch, delta-m against single-task baselines
(trained first with the same budget by `mtl baselines`: one network per task, whatever the architecture),
trainable parameters (`mtl inspect`) and training examples per second (median epoch time of epochs 2..N).
--workdir keeps the runs (finished ones are reused; --report tabulates only those). Standard library only.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare_weighting  # noqa: E402  (spec strings and finished-run detection)

ARCHITECTURES = ["hps", "mmoe", "cgc", "ple", "dselect_k", "cross_stitch", "mtan", "branch:at=2"]


def spec_yaml(spec):
    """'ple:levels=3' -> '{type: ple, levels: 3}'."""
    return compare_weighting.spec_yaml(spec, "type")


def common_sets(args, run_dir):
    sets = ["trainer.epochs=%d" % args.epochs, "trainer.seed=%d" % args.seed, "trainer.run_dir=" + run_dir,
            "weighting=" + compare_weighting.weighting_yaml(args.weighting)]
    if args.threads:
        sets.append("trainer.threads=%d" % args.threads)
    if args.train_size:
        sets.append("data.train_size=%d" % args.train_size)
    if args.test_size:
        sets.append("data.test_size=%d" % args.test_size)
    if args.max_steps:
        sets.append("trainer.max_steps=%d" % args.max_steps)
    return [x for s in sets + args.set for x in ("--set", s)]


def check_output(cmd):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or ["(no output)"]
        sys.exit("compare_architectures: %s failed: %s" % (" ".join(cmd), lines[-1]))
    return proc.stdout


def parameters(args, arch):
    out = check_output([args.mtl, "inspect", args.config, "--set", "model.architecture=" + spec_yaml(arch)] +
                       [x for s in args.set for x in ("--set", s)])
    m = re.search(r"^parameters: (\d+) total", out, re.M)
    return int(m.group(1)) if m else None


def run(args, arch, workdir, baselines):
    run_dir = os.path.join(workdir, arch.replace(":", "_").replace("=", "-"))
    events = compare_weighting.finished_events(run_dir, args.epochs)
    if events is None and args.report:
        return None
    if events is None:
        if os.path.exists(run_dir):
            shutil.rmtree(run_dir)
        cmd = [args.mtl, "train", args.config, "-q", "--set", "model.architecture=" + spec_yaml(arch)]
        cmd += common_sets(args, run_dir)
        cmd += ["--set", "baselines=" + (baselines or "none")]
        check_output(cmd)
        events = compare_weighting.finished_events(run_dir, args.epochs)
        if events is None:
            sys.exit("compare_architectures: %s: the run did not finish its epochs" % arch)
    epochs = [e for e in events if e["event"] == "epoch"]
    last = [e for e in events if e["event"] == "eval"][-1]
    metrics = {}
    for key, value in last.items():
        if "/" not in key or key.endswith("/loss"):
            continue
        task, metric = key.split("/", 1)
        metrics.setdefault(task, (metric, value))  # the task's first metric
    timed = epochs[1:] or epochs
    seconds = statistics.median(e["seconds"] for e in timed)
    steps = epochs[-1]["step"] - epochs[-2]["step"] if len(epochs) > 1 else epochs[0]["step"]
    batch = re.search(r"^  batch_size: (\d+)", open(os.path.join(run_dir, "config.yaml")).read(), re.M)
    examples = steps * int(batch.group(1)) if batch else None  # the last batch of an epoch may be smaller
    if all("examples_per_second" in e for e in timed):  # logged by mtl since it measures it itself
        seconds, examples = 1.0, statistics.median(e["examples_per_second"] for e in timed)
    return {"metrics": metrics, "delta_m": last.get("delta_m"), "seconds": seconds,
            "params": parameters(args, arch), "examples": examples}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mtl", default="build/mtl")
    p.add_argument("--config", default="configs/multi_fashion.yaml")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--train-size", type=int, default=60000, help="data.train_size (0: the config's)")
    p.add_argument("--test-size", type=int, default=10000, help="data.test_size (0: the config's)")
    p.add_argument("--threads", type=int, default=0, help="trainer.threads (0: the config's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--weighting", default="ew", help="the weighting method of every run, e.g. ew, pcgrad or mgda:space=representation")
    p.add_argument("--architectures", default=",".join(ARCHITECTURES))
    p.add_argument("--set", action="append", default=[], help="extra config override (repeatable)")
    p.add_argument("--out", help="also write the table to this file")
    p.add_argument("--workdir", help="keep the run directories here; finished runs are reused")
    p.add_argument("--report", action="store_true", help="train nothing: tabulate the finished runs in --workdir")
    p.add_argument("--max-steps", type=int, default=0,
                   help="trainer.max_steps: with --epochs 1, a short run whose one (partial) epoch gives examples/s")
    p.add_argument("--no-baselines", action="store_true",
                   help="skip the single-task baselines (delta-m n/a): e.g. to measure examples/s alone on a short budget")
    args = p.parse_args()
    if args.report and not args.workdir:
        sys.exit("compare_architectures: --report reads the runs of --workdir; give --workdir")
    archs = args.architectures.split(",")
    results = {}
    with tempfile.TemporaryDirectory(prefix="mtl-arch-") as tmp:
        workdir = args.workdir or tmp
        os.makedirs(workdir, exist_ok=True)
        single = os.path.join(workdir, "single")
        baselines = single + ".baselines/baselines.json"
        if not os.path.exists(baselines) and not args.report and not args.no_baselines:
            print("training the single-task baselines ...", file=sys.stderr, flush=True)
            check_output([args.mtl, "baselines", args.config, "-q"] + common_sets(args, single))
        if not os.path.exists(baselines):
            baselines = None
        for a in archs:
            if not args.report:
                print("training %s ..." % a, file=sys.stderr, flush=True)
            results[a] = run(args, a, workdir, baselines)
        single_metrics = {}
        if baselines:
            data = json.load(open(baselines))
            for task, entry in data["tasks"].items():
                for metric, v in entry["metrics"].items():
                    single_metrics[(task, metric)] = v["value"]
    archs = [a for a in archs if results[a] is not None]
    if not archs:
        sys.exit("compare_architectures: no finished run to tabulate")
    tasks = list(results[archs[0]]["metrics"])
    header = ["%s %s" % (t, results[archs[0]]["metrics"][t][0]) for t in tasks]
    lines = ["| architecture | " + " | ".join(header) + " | delta-m | parameters | examples/s |",
             "|---|" + "---|" * (len(tasks) + 3)]
    fmt = lambda v: "%.4f" % v
    if single_metrics:
        row = [single_metrics.get((t, results[archs[0]]["metrics"][t][0])) for t in tasks]
        lines.append("| single-task | " + " | ".join("" if v is None else fmt(v) for v in row) + " | 0 | | |")
    for a in archs:
        r = results[a]
        dm = "%+.2f%%" % r["delta_m"] if r["delta_m"] is not None else "n/a"
        rate = "%.0f" % (r["examples"] / r["seconds"]) if r["examples"] else "%.2f s/epoch" % r["seconds"]
        lines.append("| %s | %s | %s | %s | %s |" % (a, " | ".join(fmt(r["metrics"][t][1]) for t in tasks), dm,
                                                    r["params"] if r["params"] is not None else "?", rate))
    compare_weighting.emit("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
