#!/usr/bin/env bash
# The fine-tuning worked example (README): pretrain LeNet on plain Fashion-MNIST, then train MultiFashion
# with the same small budget (1 epoch on 10% of the data) four ways: from scratch, with the pretrained trunk
# frozen, fine-tuning everything, and fine-tuning with the trunk at a tenth of the rate. Prints a table of
# test accuracies. Runs go to runs/finetune_example/ (a fresh directory per call of this script).
#   bash tools/finetune_example.sh                  # needs a build (tools/build.sh)
#   PRETRAIN_EPOCHS=1 bash tools/finetune_example.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MTL=${MTL:-./build/mtl}
[ -x "$MTL" ] || { echo "finetune_example: $MTL not found; run bash tools/build.sh first" >&2; exit 1; }
base=runs/finetune_example
n=1
while [ -e "$base-$n" ]; do n=$((n + 1)); done
out="$base-$n"
mkdir -p "$out"
common=(--set "trainer.seed=${SEED:-0}")
[ -n "${THREADS:-}" ] && common+=(--set "trainer.threads=$THREADS")

echo "== pretraining: configs/fashion_pretrain.yaml, ${PRETRAIN_EPOCHS:-3} epochs"
"$MTL" train configs/fashion_pretrain.yaml "${common[@]}" --set "trainer.epochs=${PRETRAIN_EPOCHS:-3}" \
  --set "trainer.run_dir=$out/pretrain"

finetune=(configs/multi_fashion_finetune.yaml "${common[@]}" --set "model.init.path=$out/pretrain")
echo "== MultiFashion from scratch (10% of the data, 1 epoch)"
"$MTL" train configs/multi_fashion.yaml "${common[@]}" --set data.train_size=12000 --set trainer.epochs=1 \
  --set baselines=none --set "trainer.run_dir=$out/scratch"
echo "== frozen pretrained trunk"
"$MTL" train "${finetune[@]}" --set "trainer.run_dir=$out/frozen"
echo "== whole model fine-tuned"
"$MTL" train "${finetune[@]}" --set 'freeze.params=[]' --set "trainer.run_dir=$out/unfrozen"
echo "== whole model fine-tuned, trunk at 0.1x the rate"
"$MTL" train "${finetune[@]}" --set 'freeze.params=[]' --set optimizer.backbone_lr_scale=0.1 \
  --set "trainer.run_dir=$out/unfrozen_slow_trunk"

# The last evaluation of each run's metrics log.
/usr/bin/python3 - "$out" <<'PY'
import sys
sys.path.insert(0, "tools")
from run_metrics import last_eval
out = sys.argv[1]
pre = last_eval(f"{out}/pretrain")
print(f"\npretrained trunk: Fashion-MNIST (36x36 canvas) test accuracy {pre['class/accuracy']:.4f}\n")
print("| MultiFashion, 1 epoch on 12k examples | left acc | right acc | mean |")
print("|---|---|---|---|")
for run, label in [("scratch", "from scratch"), ("frozen", "pretrained trunk, frozen"),
                   ("unfrozen", "pretrained trunk, fine-tuned"),
                   ("unfrozen_slow_trunk", "pretrained trunk, fine-tuned at 0.1x rate")]:
    e = last_eval(f"{out}/{run}")
    l, r = e["left/accuracy"], e["right/accuracy"]
    print(f"| {label} | {l:.4f} | {r:.4f} | {(l + r) / 2:.4f} |")
PY
