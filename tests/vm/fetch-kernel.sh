#!/usr/bin/env bash
# Downloads and unpacks Debian's stock kernel of one suite into the VM cache, through a
# private apt configuration (scripts/private-apt.sh): the machine's own apt sources and
# package state are never touched. EXECFLOW_KERNEL_ARCH: amd64 (default) or arm64.
# Usage: tests/vm/fetch-kernel.sh SUITE CACHE_DIR    e.g. bookworm /var/cache/execflow-vm
# Prints the unpacked kernel's folder (boot/vmlinuz-* and lib/modules/*, or from 7.x
# usr/lib/modules/*/vmlinuz beside the modules). sid keeps only its newest kernel: the
# matrix follows it, and a suite whose index has no kernel fails here, by name.
set -euo pipefail
suite=$1 cache=$2
arch=${EXECFLOW_KERNEL_ARCH:-amd64}
apt_dir=$cache/apt/$suite-$arch
out=$cache/kernels/$suite-$arch
# shellcheck source=scripts/private-apt.sh
source "$(dirname "$0")/../../scripts/private-apt.sh"
private_apt "$apt_dir" "$suite" "$arch"

# The cached kernel is reused while the suite's metapackage points at it.
apt-get "${apt_opts[@]}" -qq update >&2
pkg=$(apt-cache "${apt_opts[@]}" depends "linux-image-$arch" |
  sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n1)
[[ -n $pkg ]] || { echo "fetch-kernel: no linux-image-$arch dependency in $suite" >&2; exit 1; }
# From 7.x, linux-image-V holds neither: the kernel is in linux-binary-V and the modules
# in linux-modules-V, both under usr/lib/modules/V/.
parts=$(apt-cache "${apt_opts[@]}" depends "$pkg" |
  sed -n 's/^ *Depends: \(linux-\(binary\|modules\)-[0-9][^ ]*\)$/\1/p')
if [[ ! -f $out/.done || $(cat "$out/.done") != "$pkg" ]]; then
  rm -rf "$out" && mkdir -p "$out"
  for p in $pkg $parts; do
    (cd "$apt_dir/archives" && apt-get "${apt_opts[@]}" -qq download "$p" >&2)
    deb=$(ls -t "$apt_dir"/archives/"${p}"_*.deb | head -n1)
    dpkg-deb -x "$deb" "$out"
    rm -f "$deb"
  done
  echo "$pkg" >"$out/.done"
fi
echo "$out"
