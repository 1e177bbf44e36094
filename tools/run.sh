#!/usr/bin/env bash
# Quick start, step 1: install dependencies, build, and train the default multi-task example
# (MultiFashion, MultiLeNet, two classification tasks), printing per-task test metrics.
# Extra arguments go to `mtl train`, e.g. tools/run.sh --set trainer.epochs=2
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
bash tools/build.sh
exec ./build/mtl train configs/multi_fashion.yaml "$@"
