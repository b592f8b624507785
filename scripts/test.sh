#!/usr/bin/env bash
# Installs what is missing, builds with warnings as errors, and runs every test
# (unit, privileged, end-to-end). Run as root: the privileged tests load BPF.
# Under CI=true a skipped privileged test is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEXECFLOW_WERROR=ON -DEXECFLOW_BUILD_TESTS=ON >/dev/null
cmake --build build -j"$(nproc)"
cd build
ctest --output-on-failure --timeout 1800 "$@"
