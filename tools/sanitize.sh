#!/usr/bin/env bash
# Sanitizer runs of the test suite (issue 20).
#
#   bash tools/sanitize.sh asan [CTEST ARGS]   # ASan + UBSan build in build-asan/, then the whole ctest suite
#   bash tools/sanitize.sh tsan [CTEST ARGS]   # TSan build in build-tsan/, then the threaded tests: engines,
#                                              # loader, worker pool, distributed, signals, robustness
#   bash tools/sanitize.sh asan-build | tsan-build   # build only
#
# Everything mtl builds is instrumented (CMake option MTL_SANITIZE); LibTorch, OpenMP and the other system
# libraries are not, so a bug inside them is not seen, and what they do is only visible where it crosses into
# mtl's code. Suppressions, each with its reason: tools/sanitizers/. Any report fails the test that caused it
# (UBSan aborts on the first finding, ASan and TSan exit non-zero).
# Optimised at -O1 with line tables, so that reports name files and lines.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SUPP=$ROOT/tools/sanitizers

configure_and_build() {  # DIR SANITIZER
  local dir=$1 kind=$2 generator=() compiler=()
  command -v ninja >/dev/null && generator=(-G Ninja)
  # clang when installed, as tools/build.sh (its PCH makes the instrumented build ~3x faster than GCC's)
  if [ -z "${CXX:-}" ] && command -v clang++ >/dev/null; then compiler=(-DCMAKE_CXX_COMPILER=clang++); fi
  if [ ! -f "$dir/CMakeCache.txt" ]; then
    cmake -S . -B "$dir" "${generator[@]}" "${compiler[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DMTL_SANITIZE="$kind"
  fi
  cmake --build "$dir" -j "$(nproc)"
}

# The threaded parts: what TSan runs (gtest suite names; ctest names are Suite.Test).
TSAN_SUITES='Loader|WorkerPool|ParallelEngine|TextParallelEngine|AsyncEngine|DynamicBalance|Diagnostics'
TSAN_SUITES+='|RepresentationSpace|ProcessReducer|ProcessGroup|ProcessEvaluation|DistributedCli|StopSignal'
TSAN_SUITES+='|Robustness|ThreadPlan|Trainer'

case "${1:-}" in
  asan-build) configure_and_build build-asan address ;;
  tsan-build) configure_and_build build-tsan thread ;;
  asan)
    shift
    configure_and_build build-asan address
    export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:check_initialization_order=1:strict_init_order=1"
    export LSAN_OPTIONS="suppressions=$SUPP/lsan.supp:print_suppressions=0"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$SUPP/ubsan.supp"
    start=$SECONDS
    (cd build-asan && ctest --output-on-failure -j "$(nproc)" "$@")
    echo "sanitize.sh asan: the whole suite passed under ASan + UBSan in $((SECONDS - start)) s"
    ;;
  tsan)
    shift
    configure_and_build build-tsan thread
    # OpenMP's thread pool synchronises in libgomp, which TSan cannot see: one OpenMP thread per process, so
    # that the threads TSan checks are mtl's own (its worker pool, loader workers, engines, signal handling).
    export OMP_NUM_THREADS=1
    export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$SUPP/tsan.supp:print_suppressions=0"
    start=$SECONDS
    (cd build-tsan && ctest --output-on-failure -j "$(nproc)" -R "^($TSAN_SUITES)\\." "$@")
    echo "sanitize.sh tsan: the threaded tests passed under TSan in $((SECONDS - start)) s"
    ;;
  *) sed -n '2,14p' "$0"; exit 2 ;;
esac
