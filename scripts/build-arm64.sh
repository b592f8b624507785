#!/usr/bin/env bash
# Cross-compiles execflow_exporter (and what the kernel matrix's arm64 guests run: the
# workload driver, the program-size reader, the privileged tests) for arm64 on an x86-64
# Debian 12 or 13 machine, with Debian's cross compiler and an arm64 sysroot of Debian's
# packages (scripts/arm64-sysroot.sh). Nothing runs under emulation.
# Usage (root: it installs the cross compiler and writes the sysroot under /var/cache):
#   scripts/build-arm64.sh [BUILD_DIR]      (default build-arm64)
# The binary is BUILD_DIR/execflow_exporter; cmake --install BUILD_DIR installs it.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-arm64}
scripts/install-deps.sh core arm64
sysroot=$(scripts/arm64-sysroot.sh)
cmake -S . -B "$build" -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
  -DEXECFLOW_ARM64_SYSROOT="$sysroot" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEXECFLOW_WERROR=ON \
  -DEXECFLOW_BUILD_TESTS=ON >/dev/null
cmake --build "$build" -j"$(nproc)" --target execflow_exporter execflow_vm_workload execflow_bench_load \
  integration_tests
echo "build-arm64: $(file -b "$build/execflow_exporter" | cut -d, -f1-2)"
