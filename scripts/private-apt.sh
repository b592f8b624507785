# Sourced, not run. private_apt DIR SUITE ARCH sets apt_opts: apt-get and apt-cache options
# for an apt of our own in DIR (its own sources list, package lists, state and download
# folder) that reads Debian's SUITE for ARCH. The machine's own apt sources and package
# state are never touched, and apt-get install --download-only with it resolves a
# package's whole dependency closure, as on an empty machine of that architecture.
# EXECFLOW_DEBIAN_MIRROR overrides the mirror (default deb.debian.org).
private_apt() {
  local dir=$1 suite=$2 arch=$3
  local mirror=${EXECFLOW_DEBIAN_MIRROR:-http://deb.debian.org/debian}
  mkdir -p "$dir/lists/partial" "$dir/archives/partial" "$dir/etc"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" \
    >"$dir/etc/sources.list"
  : >"$dir/status"
  apt_opts=(-o "Dir::Etc::SourceList=$dir/etc/sources.list" -o "Dir::Etc::SourceParts=$dir/etc"
    -o "Dir::State=$dir" -o "Dir::State::Lists=$dir/lists" -o "Dir::State::status=$dir/status"
    -o "Dir::Cache=$dir" -o "Dir::Cache::Archives=$dir/archives"
    -o "Dir::Etc::Preferences=$dir/etc/none" -o "Dir::Etc::PreferencesParts=$dir/etc"
    -o "APT::Architecture=$arch" -o "APT::Architectures=$arch"
    -o "APT::Get::List-Cleanup=false" -o "Debug::NoLocking=true" -o "APT::Sandbox::User=root")
}
