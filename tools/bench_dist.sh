#!/usr/bin/env bash
# Distributed-training benchmark (issue 16): `mtl train` on MultiFashion MultiLeNet (configs/multi_fashion.yaml,
# 12,000 training examples = 47 steps of 256 per epoch, 3 epochs) as
#   1 process x 2 threads, 2 processes x 1 thread (mtl train --nproc 2, c10d Gloo), the latter also with pcgrad,
# against PyTorch's own DistributedDataParallel (tools/bench_ddp.py: Debian python3-torch, gloo, 2 processes x 1
# thread, the same model, global batch and optimizer), all in this one run, round-robin over --repeats.
# mtl's throughput is 12,000 / the median epoch time of epochs 2-3 (epoch 1 warms up; evaluation is not in the
# epoch time); the bytes each rank puts into collectives per step come from the run's `collectives` lines.
#   bash tools/bench_dist.sh [--repeats 3] [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
repeats=3 quick=0
while [ $# -gt 0 ]; do
  case "$1" in
    --repeats) repeats="$2"; shift 2 ;;
    --quick) quick=1; repeats=1; shift ;;
    *) echo "bench_dist.sh: unknown argument $1 (expected --repeats N or --quick)" >&2; exit 2 ;;
  esac
done
mtl="${MTL_EXE:-build/mtl}" bench="${MTL_BENCH_EXE:-build/mtl_bench}"
if [ -z "${MTL_EXE:-}" ]; then cmake --build build --target mtl mtl_bench -j "$(nproc)" >&2; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
train_size=12000 epochs=3 steps=47
if [ "$quick" = 1 ]; then train_size=1024 epochs=2 steps=4; fi
common=(configs/multi_fashion.yaml -q --set data.train_size=$train_size --set data.test_size=1000
        --set trainer.epochs=$epochs --set trainer.eval_interval=0 --set baselines=none)

python=/usr/bin/python3
ddp=1
if ! "$python" -c "import torch.distributed, numpy" 2>/dev/null; then
  echo "bench_dist.sh: $python cannot import torch.distributed and numpy; no DDP baseline" >&2
  ddp=0
fi
prefix=""
[ "$ddp" = 1 ] && prefix=$("$bench" --print-data-prefix --train-size $train_size | tail -1)

for r in $(seq 1 "$repeats"); do
  echo "round $r/$repeats" >&2
  "$mtl" train "${common[@]}" --threads 2 --set trainer.run_dir="$work/mtl_1x2-$r" >/dev/null
  "$mtl" train "${common[@]}" --nproc 2 --threads 1 --set trainer.run_dir="$work/mtl_2x1-$r" >/dev/null
  "$mtl" train "${common[@]}" --nproc 2 --threads 1 --set weighting.method=pcgrad \
    --set trainer.run_dir="$work/mtl_2x1_pcgrad-$r" >/dev/null
  if [ "$ddp" = 1 ]; then
    "$python" tools/bench_ddp.py --data "$prefix" --nproc 2 --steps $((steps * (epochs - 1))) --warmup $steps \
      > "$work/ddp-$r.json"
  fi
done

"$python" - "$work" "$train_size" "$repeats" <<'PY'
import glob, json, statistics, sys
work, rows, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def mtl_row(name):
    rates, bytes_ = [], None
    for r in range(1, repeats + 1):
        lines = [json.loads(l) for l in open(f"{work}/{name}-{r}/metrics.jsonl")]
        secs = [l["seconds"] for l in lines if l["event"] == "epoch"][1:]
        rates.append(rows / statistics.median(secs))
        coll = [l["bytes_per_step"] for l in lines if l["event"] == "collectives"]
        if coll: bytes_ = coll[-1]
    return statistics.median(rates), bytes_

table = {n: mtl_row(n) for n in ("mtl_1x2", "mtl_2x1", "mtl_2x1_pcgrad")}
ddp = [json.load(open(p)) for p in sorted(glob.glob(f"{work}/ddp-*.json"))]
if ddp:
    table["pytorch_ddp_2x1"] = (statistics.median(d["samples_per_s"] for d in ddp), ddp[0]["gradient_bytes_per_step"])
base = table["mtl_2x1"][0]
print(f"{'run':18} {'examples/s':>11} {'vs mtl 2x1':>11} {'bytes/step/rank':>16}")
for name, (rate, b) in table.items():
    print(f"{name:18} {rate:11.0f} {rate / base:10.2f}x {('-' if b is None else f'{b:.0f}'):>16}")
if ddp:
    print(f"mtl 2 processes x 1 thread vs PyTorch DDP: {base / table['pytorch_ddp_2x1'][0]:.2f}x; "
          f"vs mtl 1 process x 2 threads: {base / table['mtl_1x2'][0]:.2f}")
PY
