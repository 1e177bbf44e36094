#!/usr/bin/env bash
# Quick start, step 2: install dependencies, build, run the whole test suite with ctest, then the fuzz targets'
# short form (tools/fuzz.sh ci: a clang build of the readers, each target 30 s on its seed corpus).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
bash tools/build.sh
(cd build && ctest --output-on-failure -j "$(nproc)" "$@")
bash tools/fuzz.sh ci
