#!/bin/sh
# Runs a test command in a mount namespace of its own in which the machine's BPF pins
# (/sys/fs/bpf) and execflow's runtime folder (/run/execflow, if there is one) are
# empty tmpfs. An exporter under test that uses the shipped bpf.pin_path and
# bpf.state_file then neither adopts, nor removes, nor leaves behind anything of a real
# execflow on this machine: /sys/fs/bpf is no bpf filesystem, so it runs unpinned, as
# on a machine without one, and its programs go when it stops. Tests of pinning mount a
# bpf filesystem of their own. Not as root: the command runs as it is (it skips itself).
[ "$(id -u)" -eq 0 ] || exec "$@"
exec unshare --mount --propagation private -- sh -c '
  mount -t tmpfs -o size=1m,mode=0755 execflow-test /sys/fs/bpf || exit 1
  if [ -d /run/execflow ]; then
    mount -t tmpfs -o size=64m,mode=0700 execflow-test /run/execflow || exit 1
  fi
  exec "$@"' sh "$@"
