#!/usr/bin/env bash
# The README's commands on Debian 13: in a pristine trixie container (the debootstrapped
# base image deploy_container builds from), privileged like a root shell on a fresh
# machine, with this repository's tracked files copied in (no build trees, no caches):
# scripts/install-deps.sh installs the build and run packages from trixie's archive,
# then the build with warnings as errors, and the unit and exporter end-to-end tests
# against trixie's libraries (libbpf 1.5, civetweb 1.16 with IPv6, prometheus-cpp 1.3,
# spdlog 1.15, gcc 14). Not the privileged tests (CI time: their build is a third of
# this test's): trixie's compiler builds them for arm64 (scripts/build-arm64.sh, run in
# the same base image) and its libbpf loads every collector exactly in the container
# image (deploy_container, deploy_multiarch). The rest of the suite (images, kernels,
# benchmarks) does not depend on the distribution it is built on.
#   usage: debian13.sh [REPO]
set -euo pipefail
REPO=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
. "$REPO/tests/e2e/deploy_lib.sh"

need_root "a privileged podman container that loads BPF"
need_cmd podman runc git tar
[[ -r /sys/kernel/btf/vmlinux ]] || skip_or_fail "no /sys/kernel/btf/vmlinux on this kernel"
ensure_base_image
name="execflow-debian13-$$"
trap 'podman rm -f -t 0 "$name" >/dev/null 2>&1 || true' EXIT

# The host's cgroup v2 hierarchy at its own mount point (the workload tests make and
# remove cgroups in it); the tests mount the BPF file system they need themselves.
cgroup2=$(awk '$9 == "cgroup2" {print $5; exit}' /proc/self/mountinfo)
[[ -n "$cgroup2" ]] || skip_or_fail "no cgroup v2 hierarchy mounted on this host"

# Tracked files as they are in the working tree (a commit's or a change's).
git -C "$REPO" ls-files -z | tar -C "$REPO" --null -T - -c |
  podman run --rm -i --name "$name" "${podman_opts[@]}" --privileged --network host \
    --cgroupns host --pid host -v "$cgroup2:$cgroup2" -v /sys/kernel/tracing:/sys/kernel/tracing \
    -e CI="${CI:-}" "$EXECFLOW_BASE_IMAGE" bash -euo pipefail -c '
  . /etc/os-release
  [[ $VERSION_ID == 13 ]] || { echo "FAIL: the container runs Debian $VERSION_ID, not 13" >&2; exit 1; }
  mkdir /src && tar -C /src -x && cd /src
  t=$SECONDS
  scripts/install-deps.sh core
  echo "debian13: dependencies $((SECONDS - t)) s"
  t=$SECONDS
  cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEXECFLOW_WERROR=ON -DEXECFLOW_BUILD_TESTS=ON >/dev/null
  cmake --build /build -j"$(nproc)" --target execflow_exporter unit_tests
  echo "debian13: build $((SECONDS - t)) s"
  cd /build
  tests="^(unit_tests|exporter_exits|exporter_e2e)\$"
  found=$(ctest -N -R "$tests" | sed -n "s/^Total Tests: //p")
  [[ $found == 3 ]] || { echo "FAIL: the build registers $found of the 3 tests" >&2; exit 1; }
  ctest --output-on-failure -R "$tests"
' || fail "the build and tests on Debian 13 failed (output above)"
echo "PASS: Debian 13: dependencies installed, built with -Werror, unit and end-to-end tests passed"
