#!/usr/bin/env bash
# Makes an arm64 Debian root folder from Debian's own packages, for two jobs:
#  - the sysroot of the arm64 cross build (cmake/aarch64-linux-gnu.cmake): the arm64
#    -dev packages execflow builds against, which cannot be installed beside the amd64
#    ones (prometheus-cpp-dev:arm64 pulls civetweb:arm64, which removes the amd64 one, and
#    libyaml-cpp-dev is not multiarch);
#  - the root filesystem of the kernel matrix's arm64 guests (tests/vm): the runtime
#    libraries, python3 for tests/vm/guest.py, busybox, util-linux, bpftool.
# Packages come through an apt of our own (scripts/private-apt.sh), with their whole
# dependency closure, and are only unpacked: no maintainer script runs and the
# machine's own apt state is never touched. The suite is the build machine's own, so the
# sysroot's libstdc++ matches the cross compiler. Made once; remade when the package
# list or the suite changes.
# Usage: scripts/arm64-sysroot.sh [DEST]    (default /var/cache/execflow-arm64/SUITE/sysroot)
# Prints DEST.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. /etc/os-release
suite=$VERSION_CODENAME
dest=${1:-/var/cache/execflow-arm64/$suite/sysroot}
gcc_major=$(aarch64-linux-gnu-gcc -dumpversion 2>/dev/null | cut -d. -f1) || true
[[ -n $gcc_major ]] || { echo "arm64-sysroot: aarch64-linux-gnu-gcc not found (scripts/packages/arm64.txt)" >&2; exit 1; }

packages=(
  # the build: execflow's -dev packages (scripts/packages/core.txt) for arm64
  libc6-dev "libstdc++-$gcc_major-dev" linux-libc-dev libbpf-dev libelf-dev zlib1g-dev
  prometheus-cpp-dev libcivetweb-dev libyaml-cpp-dev libspdlog-dev libfmt-dev libgtest-dev
  libgmock-dev nlohmann-json3-dev libssl-dev libcap-dev libcli11-dev libsystemd-dev libmount-dev
  # the guest: what tests/vm/guest.py runs beside the cross-built binaries
  python3 busybox-static coreutils dash util-linux mount bpftool iproute2
)
stamp="$suite ${packages[*]} (with package records)"
if [[ -f $dest/.done && $(cat "$dest/.done") == "$stamp" ]]; then
  echo "$dest"
  exit 0
fi

. "$here/private-apt.sh"
apt_dir=$(dirname "$dest")/apt
private_apt "$apt_dir" "$suite" arm64
apt-get "${apt_opts[@]}" -qq update >&2
rm -f "$apt_dir"/archives/*.deb
apt-get "${apt_opts[@]}" -qq -y --no-install-recommends install --download-only "${packages[@]}" >&2

rm -rf "$dest"
mkdir -p "$dest/usr/bin" "$dest/usr/sbin" "$dest/usr/lib"
# A merged /usr, as on a Debian 12 or 13 system.
for d in bin sbin lib; do ln -s "usr/$d" "$dest/$d"; done
# Each package's record as dpkg keeps it (its control fields in status.d/, its files in
# info/PKG.list), so what is taken from here (the arm64 image's libraries) names its
# package and version.
mkdir -p "$dest/var/lib/dpkg/status.d" "$dest/var/lib/dpkg/info"
for deb in "$apt_dir"/archives/*.deb; do
  pkg=$(dpkg-deb -f "$deb" Package)
  dpkg-deb -f "$deb" | awk '{print} /^Package:/ {print "Status: install ok installed"}' \
    >"$dest/var/lib/dpkg/status.d/$pkg"
  # Unpacked once: tar -v names each file as it writes it, which is the file list.
  dpkg-deb --fsys-tarfile "$deb" | tar -xv --keep-directory-symlink -C "$dest" |
    sed -n 's|^\./\(.*[^/]\)$|/\1|p' >"$dest/var/lib/dpkg/info/$pkg.list"
done
# What a system's first boot and maintainer scripts would have made: /bin/sh, the
# mount points, the root and nobody accounts.
[[ -e $dest/usr/bin/sh ]] || ln -s dash "$dest/usr/bin/sh"
mkdir -p "$dest"/{dev,proc,sys,tmp,run,root,var/tmp}
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$dest/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$dest/etc/group"
echo "$stamp" >"$dest/.done"
echo "arm64-sysroot: $(ls "$apt_dir"/archives/*.deb | wc -l) packages of $suite in $dest" >&2
rm -f "$apt_dir"/archives/*.deb
echo "$dest"
