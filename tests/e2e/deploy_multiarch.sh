#!/usr/bin/env bash
# Builds the linux/amd64 + linux/arm64 manifest list with
# deploy/container/make-multiarch-image.sh and proves its arm64 half on an arm64 kernel:
#  1. the list names exactly linux/amd64 and linux/arm64, each the digest of its image;
#     both images have the same config (user, ports, entrypoint, command, labels);
#  2. the list is pushed as a registry would receive it (an OCI layout, --all), and the
#     arm64 root filesystem is unpacked from it by following index -> arm64 manifest ->
#     layers: every ELF file in it is AArch64, and it has no shell;
#  3. Debian's arm64 6.12 kernel boots under qemu-system-aarch64 (tests/vm/vm.py) with
#     that root filesystem shared read-only; inside, the image's ENTRYPOINT with its CMD
#     runs chrooted into it (with /proc, /sys, bpffs, tracefs, cgroup2, /dev, a tmpfs
#     /run), and from outside the chroot N execs under a UID of their own move
#     execflow_execs_total{uid} by exactly N; it answers over IPv6 too ([::1], one more
#     listen address: the image is Debian 13's, whose civetweb has IPv6), reports the
#     revision built and exits 0 on SIGTERM. The guest writes what it saw to its output folder; the checks are here.
# Nothing arm64 runs on this machine.
#   usage: deploy_multiarch.sh [REPO]
set -euo pipefail
REPO=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
. "$REPO/tests/e2e/deploy_lib.sh"

need_root "podman, the cross compiler's packages, the arm64 sysroot"
need_cmd podman runc jq python3 qemu-system-aarch64 aarch64-linux-gnu-g++ aarch64-linux-gnu-readelf cmake

tag=localhost/execflow:e2e-multiarch
execs=25
uid=$((420000 + $$ % 10000)) # no process of the guest runs as this UID
rev=$(git -C "$REPO" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
start=$SECONDS

# The guest's /tmp, /run and /var/tmp are tmpfs: a shared folder must live elsewhere.
mkdir -p /var/cache/execflow-e2e
work=$(mktemp -d /var/cache/execflow-e2e/multiarch.XXXXXX)
rootfs=$work/rootfs
cleanup() {
  local root=
  [[ ! -f $work/guest.result ]] || root=$(head -n 1 "$work/guest.result")
  rm -rf "$work"
  # vm.run_guest made the share's mount point inside the guest's root folder
  [[ -z $root ]] || rmdir "$root$rootfs" "$root$work" 2>/dev/null || true
}
trap cleanup EXIT

# 1. The images and the list.
ensure_base_image "$EXECFLOW_BASE_IMAGE"
# Under CI, scripts/test.sh has just cross-built this commit in build-arm64: the image
# takes that binary instead of a second cross build (5 minutes of CI).
arm64_build=$REPO/build-image-arm64
if [[ ${CI:-} == true && -x $REPO/build-arm64/execflow_exporter ]]; then
  export ARM64_PREBUILT=$REPO/build-arm64
  arm64_build=$ARM64_PREBUILT
fi
PODMAN_BUILD_OPTS="${podman_opts[*]} --network host --pull=never" BASE_IMAGE=$EXECFLOW_BASE_IMAGE \
  "$REPO/deploy/container/make-multiarch-image.sh" "$tag" >"$work/build.log" 2>&1 || {
  tail -n 60 "$work/build.log" >&2; fail "make-multiarch-image.sh failed (log above)"; }
echo "built $tag ($((SECONDS - start)) s)"

list=$(podman manifest inspect "$tag") || fail "$tag is not a manifest list"
platforms=$(jq -r '[.manifests[].platform | "\(.os)/\(.architecture)"] | sort | join(" ")' <<<"$list")
[[ $platforms == "linux/amd64 linux/arm64" ]] || fail "$tag lists '$platforms', want 'linux/amd64 linux/arm64'"
config=()
for a in amd64 arm64; do
  want=$(podman image inspect -f '{{.Digest}}' "$tag-$a")
  got=$(jq -r --arg a "$a" '.manifests[] | select(.platform.architecture == $a) | .digest' <<<"$list")
  [[ $got == "$want" ]] || fail "$tag's linux/$a entry is $got, not $tag-$a ($want)"
  [[ $(podman image inspect -f '{{.Os}}/{{.Architecture}}' "$tag-$a") == "linux/$a" ]] ||
    fail "$tag-$a is not a linux/$a image"
  config+=("$(podman image inspect -f '{{json .Config}}' "$tag-$a" | jq -S -c .)")
done
[[ ${config[0]} == "${config[1]}" ]] ||
  fail "the two images' configs differ: amd64 ${config[0]}, arm64 ${config[1]}"
echo "$tag: linux/amd64 and linux/arm64, same config: $(jq -c '{Entrypoint, Cmd, User}' <<<"${config[1]}")"

# 2. The arm64 root filesystem, as a registry client would take it from the pushed list.
podman manifest push --all --quiet "$tag" "oci:$work/oci:multiarch" >"$work/push.log" 2>&1 || {
  cat "$work/push.log" >&2; fail "podman manifest push --all to an OCI layout failed"; }
blob() { cat "$work/oci/blobs/${1%%:*}/${1#*:}" || fail "blob $1 missing from the pushed layout"; }
index=$(jq -r '.manifests[0].digest' "$work/oci/index.json")
manifest=$(blob "$index" | jq -r '.manifests[] | select(.platform.os == "linux" and .platform.architecture == "arm64") | .digest')
[[ -n $manifest && $manifest != *$'\n'* ]] || fail "the pushed index has no single linux/arm64 manifest"
cfg=$(blob "$(blob "$manifest" | jq -r .config.digest)")
[[ $(jq -r '"\(.os)/\(.architecture)"' <<<"$cfg") == linux/arm64 ]] ||
  fail "the pushed linux/arm64 manifest's config says $(jq -r '"\(.os)/\(.architecture)"' <<<"$cfg")"
mkdir "$rootfs"
for layer in $(blob "$manifest" | jq -r '.layers[].digest'); do
  blob "$layer" | tar -xz -C "$rootfs" || fail "cannot unpack layer $layer"
done
[[ -z $(find "$rootfs" -name '.wh.*' -print -quit) ]] || fail "whiteouts in the arm64 layers: unpacked wrong"
entry=$(jq -c '.config.Entrypoint + .config.Cmd' <<<"$cfg")
[[ -x $rootfs$(jq -r '.[0]' <<<"$entry") ]] || fail "the ENTRYPOINT $(jq -r '.[0]' <<<"$entry") is not in the arm64 image"
elves=0
while IFS= read -r -d '' f; do
  [[ $(head -c 4 "$f" | od -An -tx1 | tr -d ' ') == 7f454c46 ]] || continue
  machine=$(aarch64-linux-gnu-readelf -h "$f" | sed -n 's/^ *Machine: *//p')
  [[ $machine == AArch64 ]] || fail "${f#"$rootfs"} in the arm64 image is built for '$machine'"
  elves=$((elves + 1))
done < <(find "$rootfs" -type f -print0)
for sh in bin/sh usr/bin/sh bin/busybox usr/bin/busybox; do
  [[ ! -e $rootfs/$sh ]] || fail "the arm64 image has /$sh: it should hold the exporter only"
done
for st in "$rootfs"/var/lib/dpkg/status.d/*; do
  pkg=${st##*/}
  grep -qx 'Architecture: arm64' "$st" || fail "dpkg record $pkg is not an arm64 package's"
  grep -q '^Version: ' "$st" || fail "dpkg record $pkg has no version"
  [[ -s $rootfs/usr/share/doc/$pkg/copyright ]] || fail "no copyright file for $pkg"
done
echo "arm64 root filesystem from the pushed list: $elves ELF files, all AArch64;" \
  "$(find "$rootfs/var/lib/dpkg/status.d" -type f | wc -l) dpkg records"
# Mount points for the guest, which cannot make them in a read-only share.
mkdir -p "$rootfs"/{proc,sys,dev,run}

# 3. The arm64 guest: its shell script mounts what the exporter reads into the image's
# root, then tests/e2e/deploy_multiarch_guest.py (from the output folder, /tmp/out in the
# guest) runs the pushed config's ENTRYPOINT and CMD chrooted there and makes the execs.
mkdir "$work/out"
cp "$REPO/tests/e2e/deploy_multiarch_guest.py" "$work/out/guest.py"
cat >"$work/guest.sh" <<EOF
img=$rootfs
EOF
cat >>"$work/guest.sh" <<'EOF'
fail() { echo "FAIL: $*"; echo "$*" >/tmp/out/failure; exit 1; }
uname -m >/tmp/out/machine
mount -t proc proc $img/proc || fail "mount proc"
mount -t sysfs sysfs $img/sys || fail "mount sysfs"
mount -t bpf bpf $img/sys/fs/bpf || fail "mount bpffs"
mount -t tracefs tracefs $img/sys/kernel/tracing || fail "mount tracefs"
mount -t cgroup2 cgroup2 $img/sys/fs/cgroup || fail "mount cgroup2"
mount -t devtmpfs devtmpfs $img/dev || fail "mount devtmpfs"
mount -t tmpfs -o mode=755 tmpfs $img/run || fail "mount tmpfs on /run"
EOF
echo "python3 /tmp/out/guest.py /tmp/out \"\$img\" $uid $execs $(jq -rn --arg e "$entry" '$e | @sh')" >>"$work/guest.sh"

guest_start=$SECONDS
# vm.py logs to stdout; the guest root and exit code come back in a file.
python3 - "$REPO" "$work/guest.sh" "$work/out" "$rootfs" "$work/guest.result" "$arm64_build" <<'EOF' >&2 ||
import sys
repo, script, out, share, result, build = sys.argv[1:]
sys.path.insert(0, f"{repo}/tests/vm")
import vm
root = vm.guest_root("arm64", build)  # the Debian root the image's libraries come from
with open(result, "w") as f:
    f.write(root + "\n")
with open(script) as f:
    rc = vm.run_guest(vm.fetch_kernel("arm64-6.12"), f.read(), out, 900, vm.Accel(), arch="arm64",
                      root=root, shares=(share,))
with open(result, "a") as f:
    f.write(("timeout" if rc is None else str(rc)) + "\n")
EOF
  fail "tests/vm/vm.py could not run the arm64 guest"
guest_rc=$(sed -n 2p "$work/guest.result")
show_guest() {
  echo "--- guest.log"; tail -n 30 "$work/out/guest.log" 2>/dev/null
  echo "--- exporter.log"; tail -n 30 "$work/out/exporter.log" 2>/dev/null
  echo "--- console.log"; tail -n 15 "$work/out/console.log" 2>/dev/null
} >&2
[[ $guest_rc != timeout ]] || { show_guest; fail "the arm64 guest did not finish within 900 s"; }
[[ $guest_rc == 0 ]] || { show_guest; fail "arm64 guest: $(cat "$work/out/failure" 2>/dev/null || echo "its script exited $guest_rc")"; }
echo "arm64 guest ran ($((SECONDS - guest_start)) s)"

machine=$(cat "$work/out/machine")
[[ $machine == aarch64 ]] || fail "the guest is $machine, not aarch64"
[[ $(cat "$work/out/root") == "$rootfs" ]] ||
  fail "the exporter's root was $(cat "$work/out/root"), not the image's ($rootfs)"
[[ $(cat "$work/out/exe") == "$rootfs$(jq -r '.[0]' <<<"$entry")" ]] ||
  fail "the exporter ran $(cat "$work/out/exe"), not the image's ENTRYPOINT"
before=$(metric_text execflow_execs_total "uid=\"$uid\"" <"$work/out/metrics.before")
after=$(metric_text execflow_execs_total "uid=\"$uid\"" <"$work/out/metrics.after")
[[ $((after - before)) == "$execs" ]] ||
  fail "arm64: execflow_execs_total{uid=\"$uid\"} moved by $((after - before)), want exactly $execs"
echo "arm64: execflow_execs_total{uid=\"$uid\"}: $before -> $after ($execs execs)"
build=$(grep '^execflow_build_info{' "$work/out/metrics.after") || fail "arm64: no execflow_build_info"
[[ $build == *'revision="'"$rev"'"'* && ${build##* } == 1 ]] ||
  fail "arm64: '$build', want execflow_build_info{...revision=\"$rev\"...} 1"
grep -q '^execflow_build_info{.*revision="'"$rev"'".* 1$' "$work/out/metrics.ipv6" ||
  fail "arm64: the scrape over IPv6 ([::1]:9742) has no execflow_build_info of revision $rev"
echo "arm64: scraped over IPv6 at [::1]:9742"
[[ $(cat "$work/out/exporter.rc") == 0 ]] ||
  fail "arm64: exit code $(cat "$work/out/exporter.rc") after SIGTERM, want 0"

echo "PASS: $tag holds linux/amd64 and linux/arm64; the arm64 image ran on arm64 6.12, counted $execs execs exactly and answered over IPv6 ($((SECONDS - start)) s)"
