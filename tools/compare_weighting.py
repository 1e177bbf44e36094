#!/usr/bin/python3
"""Train MultiFashion with every weighting method (same seed, data and budget) and print a Markdown table.

  /usr/bin/python3 tools/compare_weighting.py [--epochs 3] [--train-size 12000] [--threads 2] [--methods ew,mgda]
                                              [--out table.md] [--mtl build/mtl] [--set KEY=VALUE]
                                              [--workdir DIR: keep the runs; finished ones are reused]
                                              [--report: with --workdir, only tabulate the runs finished so far]

For each method it runs `mtl train configs/multi_fashion.yaml --set weighting={method: M}` in its own run
directory (a method may carry options: `stch:warmup_epochs=1:mu=0.5`, `pcgrad:space=representation`;
`--methods gradient` is every gradient-based method in both spaces) and reads the run's metrics log: final per-task test accuracy, mean epoch seconds, and the time
per step relative to EW (the method's overhead; both measured in this invocation on this machine). First it
trains the single-task baselines with the same budget (`mtl baselines`), so every row also has delta-m: the mean
signed relative difference of the task metrics to the single-task models, in %, positive = better.
Only the Python standard library is used.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

METHODS = ["ew", "gls", "uw", "dwa", "rlw", "famo", "stch:warmup_epochs=1", "gradnorm", "mgda", "mgda:space=representation",
           "pcgrad", "gradvac", "graddrop", "cagrad", "imtl", "nash_mtl", "aligned_mtl", "upgrad", "dualproj", "config",
           "db_mtl"]
# --methods gradient: every gradient-based method in both spaces (weighting.space); db_mtl's representation form
# has no moving average (beta 0).
GRADIENT = ["mgda", "pcgrad", "gradvac", "graddrop", "cagrad", "imtl", "nash_mtl", "aligned_mtl", "upgrad",
            "dualproj", "config", "db_mtl", "gradnorm"]


def expand(methods):
    out = []
    for m in methods:
        if m != "gradient":
            out.append(m)
            continue
        for g in GRADIENT:
            out.append(g)
            out.append(g + (":beta=0" if g == "db_mtl" else "") + ":space=representation")
    return out


def spec_yaml(spec, name_key="method"):
    """'stch:warmup_epochs=1:mu=0.5' -> '{method: stch, warmup_epochs: 1, mu: 0.5}' (name_key: method or type)."""
    name, *options = spec.split(":")
    parts = ["%s: %s" % (name_key, name)]
    for o in options:
        key, _, value = o.partition("=")
        if not value:
            sys.exit("%s: expected key=value in spec '%s', got '%s'" % (os.path.basename(sys.argv[0]), spec, o))
        parts.append("%s: %s" % (key, value))
    return "{" + ", ".join(parts) + "}"


def weighting_yaml(spec):
    return spec_yaml(spec, "method")


def common_sets(args, run_dir):
    sets = ["trainer.epochs=%d" % args.epochs, "trainer.threads=%d" % args.threads, "trainer.seed=%d" % args.seed,
            "trainer.run_dir=" + run_dir, "data.train_size=%d" % args.train_size,
            "data.test_size=%d" % args.test_size] + args.set
    return [x for s in sets for x in ("--set", s)]


def check_call(cmd):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        sys.exit("compare_weighting: %s failed:\n%s" % (" ".join(cmd), proc.stderr.strip().splitlines()[-1]))


def train_baselines(args, workdir):
    """Single-task baselines with the same budget; returns the baselines file and each task's accuracy."""
    run_dir = os.path.join(workdir, "single")
    path = run_dir + ".baselines/baselines.json"
    if not os.path.exists(path) and args.report:
        return None, {}
    if not os.path.exists(path):  # mtl baselines writes the file last
        check_call([args.mtl, "baselines", args.config, "-q"] + common_sets(args, run_dir))
    with open(path) as f:
        data = json.load(f)
    accuracy = {}
    for task, entry in data["tasks"].items():
        if "accuracy" in entry["metrics"]:
            accuracy[task] = entry["metrics"]["accuracy"]["value"]
    return path, accuracy


def finished_events(run_dir, epochs):
    """The metrics log of a run in run_dir that finished all its epochs and its final evaluation, else None."""
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.exists(path):
        return None
    events = [json.loads(line) for line in open(path)]
    done = [e for e in events if e["event"] == "epoch"]
    if len(done) < epochs or not any(e["event"] == "eval" and e["epoch"] == epochs - 1 for e in events):
        return None
    return events


def run(args, method, workdir, baselines):
    run_dir = os.path.join(workdir, method.replace(":", "_").replace("=", "-"))
    events = finished_events(run_dir, args.epochs)
    if events is None and args.report:
        return None
    if events is None:  # a run that did not finish starts again
        if os.path.exists(run_dir):
            shutil.rmtree(run_dir)
        cmd = [args.mtl, "train", args.config, "--set", "weighting=" + weighting_yaml(method)] + common_sets(args, run_dir)
        if baselines:
            cmd += ["--set", "baselines=" + baselines]
        check_call(cmd)
        events = finished_events(run_dir, args.epochs) or [json.loads(line) for line in open(os.path.join(run_dir, "metrics.jsonl"))]
    epochs = [e for e in events if e["event"] == "epoch"]
    evals = [e for e in events if e["event"] == "eval"]
    if not epochs or not evals:
        sys.exit("compare_weighting: %s: no epoch/eval lines in the metrics log" % method)
    steps = epochs[-1]["step"]
    seconds = sum(e["seconds"] for e in epochs)
    accuracy = {k.split("/")[0]: v for k, v in evals[-1].items() if k.endswith("/accuracy")}
    return {"seconds_per_epoch": seconds / len(epochs), "ms_per_step": 1000 * seconds / steps, "accuracy": accuracy,
            "delta_m": evals[-1].get("delta_m")}


def emit(table, out):
    """Prints the table, and writes it to `out` too when given."""
    print(table)
    if out:
        with open(out, "w") as f:
            f.write(table + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mtl", default="build/mtl")
    p.add_argument("--config", default="configs/multi_fashion.yaml")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--train-size", type=int, default=12000)
    p.add_argument("--test-size", type=int, default=4000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--set", action="append", default=[], help="extra config override (repeatable)")
    p.add_argument("--out", help="also write the table to this file")
    p.add_argument("--no-baselines", action="store_true", help="skip the single-task baselines (no delta-m column)")
    p.add_argument("--workdir", help="keep the run directories here; finished runs are reused when run again "
                                     "(default: a temporary directory)")
    p.add_argument("--report", action="store_true", help="train nothing: tabulate the finished runs in --workdir")
    args = p.parse_args()
    if args.report and not args.workdir:
        sys.exit("compare_weighting: --report reads the runs of --workdir; give --workdir")
    methods = expand(args.methods.split(","))
    if "ew" not in methods:
        methods = ["ew"] + methods  # the overhead baseline
    results = {}
    single = {}
    with tempfile.TemporaryDirectory(prefix="mtl-compare-") as tmp:
        workdir = args.workdir or tmp
        os.makedirs(workdir, exist_ok=True)
        baselines = None
        if not args.no_baselines:
            if not args.report:
                print("training the single-task baselines ...", file=sys.stderr, flush=True)
            baselines, single = train_baselines(args, workdir)
        for m in methods:
            if not args.report:
                print("training with %s ..." % m, file=sys.stderr, flush=True)
            results[m] = run(args, m, workdir, baselines)
    missing = [m for m in methods if results[m] is None]
    methods = [m for m in methods if results[m] is not None]
    if missing:
        print("not finished yet (left out): " + ", ".join(missing), file=sys.stderr)
    if "ew" not in methods:
        sys.exit("compare_weighting: the EW run has not finished yet: nothing to compare against")
    tasks = sorted(results["ew"]["accuracy"])
    base = results["ew"]["ms_per_step"]
    pct = lambda v: "%.2f%%" % (100 * v)
    lines = ["| method | " + " | ".join(t + " acc." for t in tasks) +
             " | mean acc. | delta-m | s/epoch | ms/step | vs EW |", "|---|" + "---|" * (len(tasks) + 5)]
    if single:
        accs = [single[t] for t in tasks]
        lines.append("| single-task | %s | %s | 0 (baseline) | | | |" % (
            " | ".join(pct(a) for a in accs), pct(sum(accs) / len(accs))))
    for m in methods:
        r = results[m]
        accs = [r["accuracy"][t] for t in tasks]
        dm = "%+.2f%%" % r["delta_m"] if r["delta_m"] is not None else "n/a"
        lines.append("| %s | %s | %s | %s | %.2f | %.1f | %.2fx |" % (
            m, " | ".join(pct(a) for a in accs), pct(sum(accs) / len(accs)), dm, r["seconds_per_epoch"],
            r["ms_per_step"], r["ms_per_step"] / base))
    emit("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
