"""Reading an mtl run's metrics log (RUN_DIR/metrics.jsonl) from Python scripts in tools/. Standard library only.

    import run_metrics
    run_metrics.last_eval("runs/multi_fashion")["left/accuracy"]
"""
import json
import os


def events(run_dir):
    """Every event of the run's metrics log, in order."""
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def last_eval(run_dir):
    """The run's last evaluation event; exits with a message naming the run when it has none."""
    evals = [e for e in events(run_dir) if e.get("event") == "eval"]
    if not evals:
        raise SystemExit("%s: the metrics log has no evaluation (did the run finish?)" % run_dir)
    return evals[-1]
