#!/usr/bin/env bash
# Training-throughput benchmark, one command: builds build/mtl_bench if needed, then times `mtl train` itself
# (mtl::assemble + mtl::train on configs/: MultiLeNet and a wide MLP on MultiFashion, optionally a Transformer on
# synthetic text, at 1..cores worker threads and at 1 worker x cores intra-op threads), the single-thread sgemm
# peak and the plain PyTorch baseline (tools/bench_pytorch.py, tools/bench_text_pytorch.py, run with a Python
# that has torch), and prints one table. Arguments go to mtl_bench, e.g.
#   bash tools/bench.sh --steps 40 --json bench.json
#   bash tools/bench.sh --default-malloc        # glibc malloc defaults (mtl otherwise tunes it at startup)
#   bash tools/bench.sh --models lenet --max-threads 1 --set engine.balance=dynamic
#   bash tools/bench.sh --models transformer --steps 20 --warmup 3   # text: tokens/s vs PyTorch
#   bash tools/bench.sh --quick                 # smoke test (ctest bench.quick): a few steps, mtl rows only
#   bash tools/bench.sh --methods all           # every gradient method in both spaces vs EW (MultiLeNet, SOTU)
# Environment: MTL_BENCH_PYTHON (default /usr/bin/python3, Debian's python3-torch: the same LibTorch);
# MTL_BENCH_EXE: a built mtl_bench to run instead of building build/mtl_bench (ctest sets it).
# Run it on an otherwise idle machine: every configuration waits (up to --max-wait s) for idle cores, and
# the table's "bg cores" column shows how busy other processes kept the machine anyway.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${MTL_BENCH_PYTHON:-/usr/bin/python3}"
bench="${MTL_BENCH_EXE:-}"

if [ -z "$bench" ]; then
  if [ ! -f build/CMakeCache.txt ]; then
    generator=()
    command -v ninja >/dev/null && generator=(-G Ninja)
    cmake -S . -B build "${generator[@]}" -DCMAKE_BUILD_TYPE=Release
  fi
  cmake --build build --target mtl_bench -j "$(nproc)" >&2
  bench=build/mtl_bench
fi

# The method table (--methods) and --models sotu train configs/sotu.yaml: its data come from tools/prepare_sotu.py.
needs_sotu=0
for arg in "$@"; do case "$arg" in --methods|--methods=*|*sotu*) needs_sotu=1 ;; esac; done
if [ "$needs_sotu" = 1 ] && [ ! -f data_cache/sotu/train.jsonl ]; then
  /usr/bin/python3 tools/prepare_sotu.py >&2
fi

baseline=(--pytorch tools/bench_pytorch.py --python "$python")
for arg in "$@"; do [ "$arg" = --quick ] && baseline=(); done
if [ ${#baseline[@]} -gt 0 ] && ! "$python" -c "import torch, numpy" 2>/dev/null; then
  echo "bench.sh: $python cannot import torch and numpy (apt-get install python3-torch); no PyTorch baseline" >&2
  baseline=()
fi
exec "$bench" "${baseline[@]}" "$@"
