#!/usr/bin/env bash
# Quick start, step 2: install dependencies, build, run the whole test suite with ctest, then the fuzz targets'
# short form (tools/fuzz.sh ci: a clang build of the readers, each target 30 s on its seed corpus). Each phase's
# wall time and the ten slowest tests are printed at the end (CI's budget is 30 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
times=()
phase() {  # phase NAME COMMAND...: runs it and records its wall time
  local name=$1 start=$SECONDS
  shift
  "$@"
  times+=("$name $((SECONDS - start)) s")
}
report() {
  echo "test.sh: wall time per phase: ${times[*]/%/;} total $SECONDS s"
  local cost=build/Testing/Temporary/CTestCostData.txt
  [ -f "$cost" ] && echo "test.sh: slowest tests (s): $(awk 'NF == 3 {printf "%s %.0f\n", $1, $3}' "$cost" |
    sort -k2 -n -r | head -10 | paste -sd, - | sed 's/,/, /g')"
  return 0
}
trap report EXIT
phase setup bash tools/setup.sh
phase build bash tools/build.sh
phase ctest bash -c 'cd build && ctest --output-on-failure -j "$(nproc)" "$@"' ctest "$@"
phase fuzz bash tools/fuzz.sh ci
