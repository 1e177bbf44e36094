#!/usr/bin/python3
"""Train MultiFashion with every weighting method (same seeds, data and budget) and print a Markdown table.

  /usr/bin/python3 tools/compare_weighting.py [--epochs 3] [--train-size 12000] [--threads 2] [--methods ew,mgda]
                                              [--seeds 1] [--out table.md] [--mtl build/mtl] [--set KEY=VALUE]
                                              [--workdir DIR: the sweep's directory; finished runs are reused]
                                              [--report: with --workdir, only tabulate the runs finished so far]

A thin layer over `mtl sweep` (mtl/sweep/sweep.h): it runs one sweep whose grid is the methods, `weighting={method:
M, ...}` (a method may carry options: `stch:warmup_epochs=1:mu=0.5`, `pcgrad:space=representation`; `--methods
gradient` is every gradient-based method in both spaces), --seeds runs each, with the single-task baselines of the
same budget (delta-m: the mean signed relative difference of the task metrics to the single-task models, in %,
positive = better), then tabulates per method: final per-task test accuracy and delta-m (mean ± standard
deviation over seeds), mean epoch seconds, and the time per step relative to EW (the method's overhead; measured in
the same sweep on this machine). Only the Python standard library is used.
"""
import argparse
import json
import os
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


def file_safe(name):
    """The directory name `mtl sweep` gives a combination (mtl/sweep/sweep.cpp)."""
    return "".join(c if c.isalnum() or c in "._=,+-" else "_" for c in name)


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


def run_result(run_dir):
    """Final accuracies, delta-m and timing of a finished sweep run, else None."""
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.exists(path):
        return None
    events = [json.loads(line) for line in open(path) if line.strip()]
    epochs = [e for e in events if e["event"] == "epoch"]
    evals = [e for e in events if e["event"] == "eval"]
    if not epochs or not evals:
        return None
    seconds = sum(e["seconds"] for e in epochs)
    return {"seconds_per_epoch": seconds / len(epochs), "ms_per_step": 1000 * seconds / epochs[-1]["step"],
            "accuracy": {k.split("/")[0]: v for k, v in evals[-1].items() if k.endswith("/accuracy")},
            "delta_m": evals[-1].get("delta_m")}


def mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    m = sum(values) / len(values)
    if len(values) < 2:
        return m, None
    return m, (sum((v - m) ** 2 for v in values) / (len(values) - 1)) ** 0.5


def cell(values, fmt, scale=1.0):
    m, s = mean_std(values)
    if m is None:
        return "n/a"
    return fmt % (m * scale) + ("" if s is None else " ± " + (fmt % (s * scale)).lstrip("+"))


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
    p.add_argument("--seed", type=int, default=0, help="the first seed")
    p.add_argument("--seeds", type=int, default=1, help="runs per method (mean ± standard deviation when > 1)")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--set", action="append", default=[], help="extra config override (repeatable)")
    p.add_argument("--out", help="also write the table to this file")
    p.add_argument("--no-baselines", action="store_true", help="skip the single-task baselines (no delta-m column)")
    p.add_argument("--workdir", help="the sweep's directory; finished runs are reused when run again "
                                     "(default: a temporary directory)")
    p.add_argument("--report", action="store_true", help="train nothing: tabulate the finished runs in --workdir")
    args = p.parse_args()
    if args.report and not args.workdir:
        sys.exit("compare_weighting: --report reads the runs of --workdir; give --workdir")
    methods = expand(args.methods.split(","))
    if "ew" not in methods:
        methods = ["ew"] + methods  # the overhead baseline
    values = [weighting_yaml(m) for m in methods]
    with tempfile.TemporaryDirectory(prefix="mtl-compare-") as tmp:
        workdir = args.workdir or tmp
        if not args.report:
            sets = ["trainer.epochs=%d" % args.epochs, "trainer.threads=%d" % args.threads,
                    "trainer.seed=%d" % args.seed, "data.train_size=%d" % args.train_size,
                    "data.test_size=%d" % args.test_size] + args.set
            cmd = [args.mtl, "sweep", args.config, "-q", "--dir", workdir, "--seeds", str(args.seeds),
                   "--grid", "weighting=" + ",".join(values)] + [x for s in sets for x in ("--set", s)]
            if args.no_baselines:
                cmd.append("--no-baselines")
            proc = subprocess.run(cmd, stdout=subprocess.DEVNULL)  # the sweep's progress goes to stderr
            if proc.returncode != 0:
                sys.exit("compare_weighting: %s failed (exit %d)" % (" ".join(cmd), proc.returncode))
        seeds = range(args.seed, args.seed + args.seeds)
        results, single = {}, {}
        for m, v in zip(methods, values):
            runs = [run_result(os.path.join(workdir, file_safe("weighting=" + v), "seed%d" % s)) for s in seeds]
            if all(r is not None for r in runs):
                results[m] = runs
        for s in seeds:
            path = os.path.join(workdir, "baselines", "seed%d.baselines" % s, "baselines.json")
            if os.path.exists(path):
                for task, entry in json.load(open(path))["tasks"].items():
                    if "accuracy" in entry["metrics"]:
                        single.setdefault(task, []).append(entry["metrics"]["accuracy"]["value"])
    missing = [m for m in methods if m not in results]
    if missing:
        print("not finished yet (left out): " + ", ".join(missing), file=sys.stderr)
    if "ew" not in results:
        sys.exit("compare_weighting: the EW run has not finished yet: nothing to compare against")
    tasks = sorted(results["ew"][0]["accuracy"])
    base = mean_std([r["ms_per_step"] for r in results["ew"]])[0]
    lines = ["| method | " + " | ".join(t + " acc." for t in tasks) +
             " | mean acc. | delta-m | s/epoch | ms/step | vs EW |", "|---|" + "---|" * (len(tasks) + 5)]
    if single:
        lines.append("| single-task | %s | %s | 0 (baseline) | | | |" % (
            " | ".join(cell(single[t], "%.2f%%", 100) for t in tasks),
            cell([sum(single[t][i] for t in tasks) / len(tasks) for i in range(len(single[tasks[0]]))], "%.2f%%", 100)))
    for m in methods:
        if m not in results:
            continue
        runs = results[m]
        ms = mean_std([r["ms_per_step"] for r in runs])[0]
        lines.append("| %s | %s | %s | %s | %.2f | %.1f | %.2fx |" % (
            m, " | ".join(cell([r["accuracy"][t] for r in runs], "%.2f%%", 100) for t in tasks),
            cell([sum(r["accuracy"][t] for t in tasks) / len(tasks) for r in runs], "%.2f%%", 100),
            cell([r["delta_m"] for r in runs], "%+.2f%%"), mean_std([r["seconds_per_epoch"] for r in runs])[0], ms,
            ms / base))
    emit("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
