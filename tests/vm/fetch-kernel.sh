#!/usr/bin/env bash
# Downloads and unpacks Debian's stock kernel of one suite into the VM cache, through a
# private apt configuration (its own sources list and state folder): the machine's own
# apt sources and package state are never touched.
# Usage: tests/vm/fetch-kernel.sh SUITE CACHE_DIR    e.g. bookworm /var/cache/execflow-vm
# Prints the unpacked kernel's folder (boot/vmlinuz-* and lib/modules/*, or from 7.x
# usr/lib/modules/*/vmlinuz beside the modules). sid keeps only its newest kernel: the
# matrix follows it, and a suite whose index has no kernel fails here, by name.
set -euo pipefail
suite=$1 cache=$2
apt_dir=$cache/apt/$suite
out=$cache/kernels/$suite
mirror=${EXECFLOW_DEBIAN_MIRROR:-http://deb.debian.org/debian}

mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$apt_dir/etc"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" \
  >"$apt_dir/etc/sources.list"
: >"$apt_dir/status"
apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/etc/sources.list" -o "Dir::Etc::SourceParts=$apt_dir/etc"
  -o "Dir::State=$apt_dir" -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::State::status=$apt_dir/status"
  -o "Dir::Cache=$apt_dir" -o "Dir::Cache::Archives=$apt_dir/archives"
  -o "Dir::Etc::Preferences=$apt_dir/etc/none" -o "Dir::Etc::PreferencesParts=$apt_dir/etc"
  -o "APT::Get::List-Cleanup=false" -o "Debug::NoLocking=true" -o "APT::Sandbox::User=root")

# The cached kernel is reused while the suite's metapackage points at it.
apt-get "${apt_opts[@]}" -qq update >&2
pkg=$(apt-cache "${apt_opts[@]}" depends linux-image-amd64 |
  sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n1)
[[ -n $pkg ]] || { echo "fetch-kernel: no linux-image-amd64 dependency in $suite" >&2; exit 1; }
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
