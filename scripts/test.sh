#!/usr/bin/env bash
# Installs what is missing, builds with warnings as errors, and runs every test
# (unit, privileged, end-to-end, the kernel matrix, the fuzzers). Run as root: the
# privileged tests load BPF. Under CI=true a skipped privileged test is a failure.
# Then the same code again under the sanitizers, in two more build trees whose tests
# fail on any report (tests/sanitizers/run.sh):
#   build-asan (ASan+UBSan): the unit, privileged and exporter end-to-end tests;
#   build-tsan (TSan): the unit and privileged tests (HTTP workers, event consumers
#   and scrapes share state).
# The other tests rebuild or boot something else (container images, kernels) or
# measure, so they run in the normal tree only. SANITIZERS="asan tsan" (the default)
# picks the trees; SANITIZERS= runs none. Arguments go to the normal tree's ctest.
# Prints where the time went: each phase here, each test in CTest's summary, each
# kernel in the matrix's.
set -euo pipefail
cd "$(dirname "$0")/.."
phase() { printf 'test.sh: %-12s %4d s\n' "$1" $((SECONDS - $2)); }

# sanitized NAME SANITIZERS TESTS...: builds build-NAME with -DEXECFLOW_SANITIZE and
# only what TESTS run, then runs exactly those tests.
sanitized() {
  local name=$1 sanitize=$2
  shift 2
  local tests=("$@") regex
  regex="^($(IFS='|'; echo "${tests[*]}"))\$"
  t=$SECONDS
  cmake -S . -B "build-$name" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEXECFLOW_WERROR=ON \
        -DEXECFLOW_BUILD_TESTS=ON -DEXECFLOW_SANITIZE="$sanitize" >/dev/null
  local targets=(execflow_exporter)
  for test in "${tests[@]}"; do
    [[ $test == *_tests ]] && targets+=("$test")
  done
  cmake --build "build-$name" -j"$(nproc)" --target "${targets[@]}"
  phase "$name build" $t
  t=$SECONDS
  local found
  found=$(cd "build-$name" && ctest -N -R "$regex" | sed -n 's/^Total Tests: //p')
  if [[ $found != "${#tests[@]}" ]]; then
    echo "test.sh: build-$name registers $found of the ${#tests[@]} tests ${tests[*]}" >&2
    rc=1
  fi
  (cd "build-$name" && ctest --output-on-failure -R "$regex") || rc=1
  phase "$name tests" $t
}
trees=${SANITIZERS-asan tsan}
for tree in $trees; do
  [[ $tree == asan || $tree == tsan ]] || { echo "test.sh: SANITIZERS: unknown tree $tree (asan, tsan)" >&2; exit 2; }
done
t=$SECONDS
scripts/install-deps.sh
phase dependencies $t
t=$SECONDS
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEXECFLOW_WERROR=ON -DEXECFLOW_BUILD_TESTS=ON >/dev/null
cmake --build build -j"$(nproc)"
phase build $t
# The arm64 cross build the kernel matrix's arm64 guests and the multi-arch image's
# arm64 half run, made in a Debian 13 container as the container image is (the base
# image is debootstrapped once: deploy/container/make-base-image.sh).
t=$SECONDS
deploy/container/make-base-image.sh localhost/execflow/debian:trixie >/dev/null
scripts/build-arm64.sh --image localhost/execflow/debian:trixie build-arm64 >/dev/null
phase "arm64 build" $t
t=$SECONDS
rc=0
(cd build && ctest --output-on-failure --timeout 1800 "$@") || rc=$?
phase tests $t
for tree in $trees; do
  case $tree in
    asan) sanitized asan address,undefined unit_tests integration_tests exporter_exits exporter_e2e hardening_e2e \
                faults_e2e \
                restart_e2e ;;
    # The tests the TSan tree leaves out, and why: tests/CMakeLists.txt.
    tsan) sanitized tsan thread unit_tests integration_tests ;;
  esac
done
phase total 0
# CI shows the start and the end of this output: repeat which tests failed, and where,
# at the end, where it is seen even when the middle is cut.
if [[ $rc != 0 ]]; then
  echo "test.sh: failed tests, by build tree:"
  # Only the trees this run tested: another tree's log is from an earlier run.
  for tree in "" $trees; do
    log=build${tree:+-$tree}/Testing/Temporary/LastTest.log
    [[ -f $log ]] || continue
    # Each failure with the lines gtest prints under it (the values compared), up to 8;
    # the Python tests' "FAIL ..." lines (the kernel matrix's: which kernel, which check)
    # and the exceptions they end on.
    awk '/: Failure$/ { n = 9 } /^\[  FAILED  \] [A-Za-z]|Test Failed|sanitizer report|(ERROR|WARNING|SUMMARY): [A-Za-z]*Sanitizer|^FAIL |^[A-Za-z_.]*(Error|Failure): / { n = 1 }
         n > 0 { print; n-- } /^\[ / { n = 0 }' "$log" | head -120 |
      sed "s|^|  ${log%%/*}: |" || true  # set -e: a tree with nothing failed is no error
  done
fi
exit $rc
