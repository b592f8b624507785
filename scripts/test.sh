#!/usr/bin/env bash
# Installs what is missing, builds with warnings as errors, and runs every test
# (unit, privileged, end-to-end, the kernel matrix). Run as root: the privileged
# tests load BPF. Under CI=true a skipped privileged test is a failure.
# Prints where the time went: each phase here, each test in CTest's summary, each
# kernel in the matrix's.
set -euo pipefail
cd "$(dirname "$0")/.."
phase() { printf 'test.sh: %-12s %4d s\n' "$1" $((SECONDS - $2)); }
t=$SECONDS
scripts/install-deps.sh
phase dependencies $t
t=$SECONDS
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEXECFLOW_WERROR=ON -DEXECFLOW_BUILD_TESTS=ON >/dev/null
cmake --build build -j"$(nproc)"
phase build $t
t=$SECONDS
rc=0
(cd build && ctest --output-on-failure --timeout 1800 "$@") || rc=$?
phase tests $t
phase total 0
exit $rc
