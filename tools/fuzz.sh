#!/usr/bin/env bash
# Fuzzing mtl's readers with libFuzzer (clang, ASan + UBSan): tests/fuzz/*_fuzz.cpp, seed corpora in
# tests/fuzz/corpus/<target>/.
#
#   bash tools/fuzz.sh build                  # configure and build build-fuzz/ (clang)
#   bash tools/fuzz.sh run TARGET [SECONDS] [RUNS]  # fuzz one target for SECONDS (default 3600) or RUNS executions,
#                                             # whichever comes first; findings in build-fuzz/findings/
#   bash tools/fuzz.sh all [SECONDS] [RUNS]   # every target in turn (the issue's bar: all 3600 1000000)
#   bash tools/fuzz.sh ci                     # build, then every target for 30 s on its corpus (CI's short form)
#   bash tools/fuzz.sh list                   # the targets
#
# Each run starts from the seed corpus plus what earlier runs found (build-fuzz/corpus/<target>/, kept between
# runs) with -rss_limit_mb=2048 -timeout=10: an input that needs more memory or time than that is a finding too
# (an unbounded allocation or a hang). A finding is written to build-fuzz/findings/<target>-crash-... ; reproduce
# it with build-fuzz/fuzz_<target> FILE, and add it as a regression test before fixing it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${MTL_FUZZ_BUILD:-$ROOT/build-fuzz}
JOBS=${MTL_FUZZ_JOBS:-$(nproc)}

targets() { for f in tests/fuzz/*_fuzz.cpp; do basename "$f" _fuzz.cpp; done; }

build() {
  command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ is not installed (apt-get install clang)" >&2; exit 2; }
  local gen=()
  command -v ninja >/dev/null && gen=(-G Ninja)
  cmake -S tests/fuzz -B "$BUILD" "${gen[@]}" -DCMAKE_CXX_COMPILER=clang++ >/dev/null
  cmake --build "$BUILD" -j "$JOBS"
  [ -f tests/fuzz/corpus/checkpoint/small.pt ] || /usr/bin/python3 tests/fuzz/make_corpus.py --fuzz-build "$BUILD"
}

run() {
  local target=$1 seconds=${2:-3600} runs=${3:--1}
  local exe="$BUILD/fuzz_$target"
  [ -x "$exe" ] || { echo "fuzz.sh: no $exe (run: bash tools/fuzz.sh build; targets: $(targets | xargs))" >&2; exit 2; }
  mkdir -p "$BUILD/corpus/$target" "$BUILD/findings"
  local seeds=("tests/fuzz/corpus/$target")  # plus the inputs of earlier findings (tests/fuzz/regressions/)
  [ -d "tests/fuzz/regressions/$target" ] && seeds+=("tests/fuzz/regressions/$target")
  echo "fuzz.sh: $target for ${seconds}s"
  # -fork is not used: one process, so that the corpus and statistics are simple to read from the log.
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
    "$exe" "$BUILD/corpus/$target" "${seeds[@]}" -max_total_time="$seconds" -runs="$runs" -rss_limit_mb=2048 \
    -timeout=10 -max_len=65536 -print_final_stats=1 -artifact_prefix="$BUILD/findings/$target-" \
    2>&1 | tee "$BUILD/findings/$target.log" | grep -E "^#[0-9]+ +(INITED|DONE|pulse)|ERROR|stat::|Test unit written" || true
  if ! grep -q "^Done [0-9]* runs\|DONE" "$BUILD/findings/$target.log"; then
    echo "fuzz.sh: $target FAILED (see $BUILD/findings/$target.log)" >&2
    return 1
  fi
}

case "${1:-}" in
  build) build ;;
  run) run "${2:?target}" "${3:-3600}" "${4:--1}" ;;
  all) status=0; for t in $(targets); do run "$t" "${2:-3600}" "${3:--1}" || status=1; done; exit $status ;;
  ci)  # every target for 30 s, as many at once as there are cores
    build
    targets | xargs -P "$JOBS" -I{} bash "$0" run {} 30 ;;
  list) targets ;;
  *) sed -n '2,15p' "$0"; exit 2 ;;
esac
