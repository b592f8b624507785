#!/usr/bin/env bash
# Builds execflow's image for linux/amd64 and linux/arm64 on an x86-64 Debian machine and
# one manifest list that names both, without a registry and without running arm64 code
# on the host:
#  - amd64: deploy/container/Containerfile, as for a single-architecture image;
#  - arm64: the cross build (scripts/build-arm64.sh, in a container of BASE_IMAGE, so
#    against an arm64 sysroot of the same Debian release as the amd64 half) is
#    installed into a root folder here, with the libraries
#    it needs from the sysroot, their packages' dpkg records and copyright files, and the
#    amd64 image's /etc/passwd and /etc/group. The same Containerfile then builds the
#    image with --platform linux/arm64 and that folder as its "build" stage
#    (--build-context build=...): podman skips stage 1, so no RUN step runs, and the
#    image gets the same USER, EXPOSE, ENTRYPOINT, CMD and labels as the amd64 one.
# Usage (root): deploy/container/make-multiarch-image.sh [TAG]
#   TAG (default localhost/execflow:multiarch) is the manifest list; the two images are
#   TAG-amd64 and TAG-arm64. `podman manifest push --all TAG docker://...` pushes the list
#   with both images.
# Environment:
#   BASE_IMAGE         the amd64 build stage's base and the arm64 cross build's container
#                      (the Containerfile's default if unset; localhost/execflow/debian:trixie
#                      from make-base-image.sh offline)
#   PODMAN_BUILD_OPTS  more `podman build` options, split on spaces (e.g. "--pull=never
#                      --network host --runtime runc")
#   ARM64_BUILD_DIR    the cross build's folder (default: build-image-arm64 in the repository)
#   ARM64_PREBUILT     an arm64 cross build of this commit already made (scripts/build-arm64.sh's
#                      folder): installed from as it is, not built again
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
tag=${1:-localhost/execflow:multiarch}
[[ ${tag##*/} == *:* ]] || tag=$tag:latest
read -ra build_opts <<<"${PODMAN_BUILD_OPTS:-}"
build=${ARM64_BUILD_DIR:-$repo/build-image-arm64}
containerfile=$repo/deploy/container/Containerfile
rev=$(git -C "$repo" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
ma=aarch64-linux-gnu

say() { echo "make-multiarch-image: $*" >&2; }
die() { say "$*"; exit 1; }
[[ $(id -u) == 0 ]] || die "run as root (podman's store, the cross compiler's packages, the sysroot)"
for tool in podman jq cmake; do
  command -v "$tool" >/dev/null || die "$tool not found"
done

stage=$(mktemp -d)
mnt=
cleanup() {
  [[ -z $mnt ]] || podman image unmount "$tag-amd64" >/dev/null 2>&1 || true
  rm -rf "$stage"
}
trap cleanup EXIT

# ---- amd64 -------------------------------------------------------------------------------
base_arg=()
[[ -z ${BASE_IMAGE:-} ]] || base_arg=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
say "building $tag-amd64 from $containerfile"
podman build "${build_opts[@]}" --platform linux/amd64 "${base_arg[@]}" --build-arg "REVISION=$rev" \
  -f "$containerfile" -t "$tag-amd64" "$repo" || die "podman build of $tag-amd64 failed"

# ---- arm64: the cross build, installed into rootfs/ ----------------------------------------
# Built in a container of the amd64 build stage's base, so both halves have the same
# Debian release and libraries (Debian 13: civetweb with IPv6).
"$repo/scripts/install-deps.sh" arm64
if [[ -n ${ARM64_PREBUILT:-} ]]; then
  build=$ARM64_PREBUILT
  say "installing the cross build in $build"
else
  image=${BASE_IMAGE:-docker.io/library/debian:trixie-slim}
  say "cross-building in $build, in a container of $image"
  "$repo/scripts/build-arm64.sh" --image "$image" "$build" || die "the arm64 cross build failed"
fi
# The arm64 Debian root the build was made against, which holds its libraries.
sysroot=$(sed -n 's/^EXECFLOW_ARM64_SYSROOT:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null) || true
[[ -n $sysroot && -d $sysroot ]] || die "$build names no arm64 sysroot (EXECFLOW_ARM64_SYSROOT in its CMakeCache.txt)"
rootfs=$stage/rootfs
DESTDIR=$rootfs cmake --install "$build" --strip >/dev/null
bin=$rootfs/usr/local/bin/execflow_exporter
compat=("$rootfs"/usr/local/lib/execflow/lib{ssl,crypto}.so)
for f in "$bin" "${compat[@]}" "$rootfs/etc/execflow/execflow.yaml"; do
  [[ -f $f ]] || die "cmake --install did not install ${f#"$rootfs"}"
done
machine=$(aarch64-linux-gnu-readelf -h "$bin" | sed -n 's/^ *Machine: *//p')
[[ $machine == AArch64 ]] || die "${bin#"$rootfs"} is built for '$machine', not AArch64"

# The shared-library closure: DT_NEEDED, followed from the binary and the compatibility
# libraries, each found where the arm64 loader looks by default. The loader itself (the
# binary's PT_INTERP) goes to its own path.
needed() { aarch64-linux-gnu-readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'; }
interp=$(aarch64-linux-gnu-readelf -l "$bin" | sed -n 's/.*interpreter: \(.*\)]$/\1/p')
[[ -n $interp ]] || die "${bin#"$rootfs"} names no program interpreter"
# in_sysroot PATH: PATH's real file in the sysroot, as the arm64 system names it.
in_sysroot() {
  local real
  real=$(realpath -e "$sysroot$1") || return 1
  [[ $real == "$sysroot"/* ]] || die "$1 resolves outside the sysroot ($real)"
  echo "${real#"$sysroot"}"
}
libdir=/usr/lib/$ma
mkdir -p "$rootfs$libdir" "$rootfs$(dirname "$interp")"
loader=$(in_sysroot "$interp") || die "no $interp in $sysroot"
cp "$sysroot$loader" "$rootfs$interp"
declare -A copied=(["${interp##*/}"]=1)
shipped=() # the library files taken from the sysroot, as the arm64 system names them
queue=("$bin" "${compat[@]}")
while ((${#queue[@]})); do
  elf=${queue[0]}
  queue=("${queue[@]:1}")
  for so in $(needed "$elf"); do
    [[ -z ${copied[$so]:-} ]] || continue
    found=
    for d in /lib/$ma /usr/lib/$ma /lib /usr/lib; do
      found=$(in_sysroot "$d/$so") && break
    done
    [[ -n $found ]] || die "$so (needed by ${elf#"$rootfs"}) is in none of the sysroot's library folders"
    cp "$sysroot$found" "$rootfs$libdir/$so"
    copied[$so]=1
    shipped+=("$found")
    queue+=("$rootfs$libdir/$so")
  done
done
shipped+=("$loader")
say "arm64 closure: ${#shipped[@]} files: ${shipped[*]##*/}"

# Each library's package, for its dpkg record and copyright file: the sysroot keeps both
# (scripts/arm64-sysroot.sh), the files of each package in var/lib/dpkg/info/PKG.list.
db=$sysroot/var/lib/dpkg
# owner PATH: the package that ships PATH (or PATH without /usr: Debian 12's ship /lib/...).
owner() {
  local p hit
  for p in "$1" "${1#/usr}"; do
    hit=$(grep -lxF -- "$p" "$db"/info/*.list | head -n1) || true
    [[ -z $hit ]] || { basename "$hit" .list; return 0; }
  done
  return 1
}
owners=()
mkdir -p "$rootfs/var/lib/dpkg/status.d"
for lib in "${shipped[@]}"; do
  pkg=$(owner "$lib") || die "no package of $sysroot ships $lib: remake it (rm $sysroot/.done)"
  [[ " ${owners[*]} " == *" $pkg "* ]] && continue
  owners+=("$pkg")
  cp "$db/status.d/$pkg" "$rootfs/var/lib/dpkg/status.d/"
  mkdir -p "$rootfs/usr/share/doc/$pkg"
  cp -L "$sysroot/usr/share/doc/$pkg/copyright" "$rootfs/usr/share/doc/$pkg/" ||
    die "no copyright file for $pkg in $sysroot/usr/share/doc/$pkg"
done
say "arm64 packages: ${owners[*]}"

# The accounts, as the amd64 image has them.
mnt=$(podman image mount "$tag-amd64") || die "podman image mount $tag-amd64 failed"
cp "$mnt/etc/passwd" "$mnt/etc/group" "$rootfs/etc/"
podman image unmount "$tag-amd64" >/dev/null
mnt=

# ---- arm64: the image --------------------------------------------------------------------
# COPY --from=build takes rootfs/ from this folder: stage 1 is unused and skipped.
say "building $tag-arm64 from $rootfs"
podman build "${build_opts[@]}" --platform linux/arm64 --skip-unused-stages=true \
  --build-context "build=$stage" -f "$containerfile" -t "$tag-arm64" "$stage" 2>&1 |
  tee "$stage/arm64-build.log" || die "podman build of $tag-arm64 failed"
! grep -E 'STEP [0-9]+/[0-9]+: RUN' "$stage/arm64-build.log" >/dev/null ||
  die "the arm64 build ran a RUN step: it must only copy the cross build"
arch=$(podman image inspect -f '{{.Os}}/{{.Architecture}}' "$tag-arm64")
[[ $arch == linux/arm64 ]] || die "$tag-arm64 is $arch, not linux/arm64"

# ---- the manifest list -------------------------------------------------------------------
if podman manifest exists "$tag"; then
  podman manifest rm "$tag" >/dev/null
elif podman image exists "$tag"; then
  die "$tag is an image, not a manifest list: remove it or choose another TAG"
fi
podman manifest create "$tag" >/dev/null
for a in amd64 arm64; do
  podman manifest add "$tag" "containers-storage:$tag-$a" >/dev/null ||
    die "podman manifest add $tag $tag-$a failed"
done
platforms=$(podman manifest inspect "$tag" | jq -r '[.manifests[].platform | "\(.os)/\(.architecture)"] | sort | join(" ")')
[[ $platforms == "linux/amd64 linux/arm64" ]] ||
  die "$tag lists '$platforms', want exactly 'linux/amd64 linux/arm64'"
say "$tag: $platforms ($tag-amd64, $tag-arm64)"
