#!/usr/bin/env bash
# Cross-compiles execflow_exporter (and what the kernel matrix's arm64 guests run: the
# workload driver, the program-size reader, the privileged tests) for arm64 on an x86-64
# Debian 12 or 13 machine, with Debian's cross compiler and an arm64 sysroot of Debian's
# packages (scripts/arm64-sysroot.sh) of the same release. Nothing runs under emulation.
# Usage (root: it installs the cross compiler and writes the sysroot under /var/cache):
#   scripts/build-arm64.sh [--image IMAGE] [BUILD_DIR]      (default build-arm64)
# --image IMAGE: build in a podman container of IMAGE, an x86-64 Debian 12 or 13 image,
#   whose release the build then follows (its libraries, its compiler), with the
#   repository, BUILD_DIR and the sysroot cache shared at their own paths. CI and the
#   container image build in Debian 13's, whose civetweb listens on IPv6.
# The binary is BUILD_DIR/execflow_exporter; cmake --install BUILD_DIR installs it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ${1:-} == --image ]]; then
  image=${2:?--image needs an image}
  build=$(realpath -m "${3:-build-arm64}")
  repo=$(pwd)
  cache=/var/cache/execflow-arm64
  mkdir -p "$build" "$cache"
  opts=(--rm --network host -v "$repo:$repo" -v "$build:$build" -v "$cache:$cache" -w "$repo")
  # runc where installed (crun fails on hybrid cgroup hosts), and limits that podman's
  # defaults may exceed.
  if command -v runc >/dev/null; then opts+=(--runtime runc); fi
  nofile=$(ulimit -Hn)
  [[ $nofile == unlimited || $nofile -gt 65536 ]] && nofile=65536
  exec podman run "${opts[@]}" --ulimit "nofile=$nofile:$nofile" --ulimit nproc=4096:4096 "$image" scripts/build-arm64.sh "$build"
fi
build=${1:-build-arm64}
scripts/install-deps.sh core arm64
sysroot=$(scripts/arm64-sysroot.sh)
cmake -S . -B "$build" -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
  -DEXECFLOW_ARM64_SYSROOT="$sysroot" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEXECFLOW_WERROR=ON \
  -DEXECFLOW_BUILD_TESTS=ON >/dev/null
cmake --build "$build" -j"$(nproc)" --target execflow_exporter execflow_vm_workload execflow_bench_load \
  integration_tests
echo "build-arm64: $build/execflow_exporter for $(aarch64-linux-gnu-readelf -h "$build/execflow_exporter" |
  sed -n 's/^ *Machine: *//p'), against $sysroot"
