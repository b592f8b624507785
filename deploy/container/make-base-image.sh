#!/usr/bin/env bash
# Builds a Debian root filesystem (Debian 13, trixie, by default) with debootstrap and
# imports it into podman's store as the base image the Containerfile starts from. For
# machines that reach Debian's package mirror but no container registry. Anyone who can
# pull from Docker Hub does not need this: the Containerfile's default base is the
# official debian image.
#
# usage: make-base-image.sh [TAG]     (default TAG: localhost/execflow/debian:trixie)
#        TAG's tag is the Debian suite: localhost/execflow/debian:bookworm builds Debian 12.
# env:   DEBIAN_MIRROR  mirror to debootstrap from (default: the first one apt uses here)
#        FORCE=1        rebuild even if TAG is already in podman's store
set -euo pipefail

tag="${1:-localhost/execflow/debian:trixie}"
suite=${tag##*:}
[[ "$tag" == *:* && "$suite" =~ ^[a-z]+$ ]] ||
  { echo "error: $tag: the tag must be a Debian suite, as in localhost/execflow/debian:trixie" >&2; exit 2; }

if [[ "${FORCE:-0}" != 1 ]] && podman image exists "$tag"; then
  echo "base image $tag already present; FORCE=1 rebuilds it"
  exit 0
fi

for tool in debootstrap podman tar; do
  command -v "$tool" >/dev/null || { echo "error: $tool not found (apt-get install $tool)" >&2; exit 1; }
done
[[ $(id -u) == 0 ]] || { echo "error: debootstrap needs root" >&2; exit 1; }

# The mirror apt already uses on this machine: deb822 sources first, then one-line sources.
# Its Debian archive, whatever suite this machine runs: the same URL serves every suite.
mirror="${DEBIAN_MIRROR:-}"
if [[ -z "$mirror" ]]; then
  mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
           awk '/^URIs:/ && $2 ~ /\/debian\/?$/ {print $2; exit}')
fi
if [[ -z "$mirror" ]]; then
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
           awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {if ($i ~ /\/debian\/?$/) {print $i; exit} next}}')
fi
mirror="${mirror:-http://deb.debian.org/debian}"
mirror=${mirror%/}

root=$(mktemp -d /var/tmp/execflow-base.XXXXXX)
trap 'rm -rf --one-file-system "$root"' EXIT

echo "debootstrap $suite from $mirror into $root"
# minbase: essential + apt only, as the official slim image has.
debootstrap --variant=minbase --components=main "$suite" "$root" "$mirror" >"$root.log" 2>&1 || {
  tail -n 30 "$root.log" >&2; rm -f "$root.log"; exit 1; }
rm -f "$root.log"

# Same apt sources inside the image as a stock Debian image: main, updates, security.
security="${mirror%/debian}/debian-security"
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
# Keep the image small and apt quiet, as the official image does.
cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
APT
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb

tar -C "$root" --numeric-owner -c . |
  podman import --change 'CMD ["/bin/bash"]' --message "debootstrap $suite minbase" - "$tag" >/dev/null
echo "imported $tag ($(podman image inspect --format '{{.Size}}' "$tag") bytes)"
