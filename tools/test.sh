#!/usr/bin/env bash
# Quick start, step 2: install dependencies, build, and run the whole test suite with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
bash tools/build.sh
cd build
ctest --output-on-failure -j "$(nproc)" "$@"
