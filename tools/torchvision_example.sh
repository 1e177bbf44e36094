#!/usr/bin/env bash
# The torchvision worked example (README): a ResNet-18 trained in plain PyTorch on Fashion-MNIST
# (tools/pretrain_torchvision_fashion.py, saved with torch.save), then fine-tuned in mtl on MultiFashion
# (configs/multi_fashion_resnet18.yaml: 3 epochs on 12k examples, trunk frozen in epoch 1), against the same
# budget from random weights and against fine-tuning everything from the start. Prints a table of test
# accuracies and times. Runs go to runs/torchvision_example-N/ (fresh per call).
#   bash tools/torchvision_example.sh                   # needs a build (tools/build.sh) and python3-torchvision
#   PRETRAIN_EPOCHS=2 THREADS=4 bash tools/torchvision_example.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MTL=${MTL:-./build/mtl}
[ -x "$MTL" ] || { echo "torchvision_example: $MTL not found; run bash tools/build.sh first" >&2; exit 1; }
/usr/bin/python3 -c 'import torchvision' 2>/dev/null ||
  { echo "torchvision_example: /usr/bin/python3 cannot import torchvision (apt-get install python3-torchvision)" >&2; exit 1; }
base=runs/torchvision_example
n=1
while [ -e "$base-$n" ]; do n=$((n + 1)); done
out="$base-$n"
mkdir -p "$out"
threads=${THREADS:-2}
common=(--set "trainer.seed=${SEED:-0}" --set "trainer.threads=$threads" -q)

timed() {  # NAME COMMAND...: runs it, records its wall time in $out/NAME.ms
  local name=$1 start
  shift
  start=$(date +%s%N)
  "$@"
  echo $(( ($(date +%s%N) - start) / 1000000 )) > "$out/$name.ms"
}

echo "== PyTorch: torchvision ResNet-18 on Fashion-MNIST, ${PRETRAIN_EPOCHS:-1} epoch(s), $threads threads"
timed pretrain /usr/bin/python3 tools/pretrain_torchvision_fashion.py --epochs "${PRETRAIN_EPOCHS:-1}" \
  --threads "$threads" --seed "${SEED:-0}" --out "$out/resnet18_fashion.pt" | tee "$out/pretrain.log"

finetune=(configs/multi_fashion_resnet18.yaml "${common[@]}" --set "model.init.path=$out/resnet18_fashion.pt")
echo "== mtl: MultiFashion from the PyTorch weights, trunk frozen in epoch 1"
timed frozen_first "$MTL" train "${finetune[@]}" --set "trainer.run_dir=$out/frozen_first"
echo "== mtl: from the PyTorch weights, everything trained from the start"
timed unfrozen "$MTL" train "${finetune[@]}" --set 'freeze.params=[]' --set 'freeze.schedule=[]' \
  --set "trainer.run_dir=$out/unfrozen"
echo "== mtl: random initialisation, the same budget"
timed scratch "$MTL" train "${finetune[@]}" --set 'freeze.params=[]' --set 'freeze.schedule=[]' \
  --set 'model.init=null' --set "trainer.run_dir=$out/scratch"

/usr/bin/python3 - "$out" <<'PY'
import re, sys
sys.path.insert(0, "tools")
from run_metrics import last_eval
out = sys.argv[1]
def seconds(name):
    return int(open(f"{out}/{name}.ms").read()) / 1000
acc = re.search(r"test accuracy ([0-9.]+)", open(f"{out}/pretrain.log").read()).group(1)
print(f"\nPyTorch ResNet-18: Fashion-MNIST test accuracy {acc} (items on the 36x36 canvas), {seconds('pretrain'):.0f} s\n")
print("| MultiFashion, 3 epochs on 12k examples (ResNet-18) | left acc | right acc | mean | time (s) |")
print("|---|---|---|---|---|")
for run, label in [("scratch", "random initialisation"),
                   ("frozen_first", "PyTorch weights, trunk frozen in epoch 1"),
                   ("unfrozen", "PyTorch weights, all trained from the start")]:
    e = last_eval(f"{out}/{run}")
    l, r = e["left/accuracy"], e["right/accuracy"]
    print(f"| {label} | {l:.4f} | {r:.4f} | {(l + r) / 2:.4f} | {seconds(run):.0f} |")
PY
