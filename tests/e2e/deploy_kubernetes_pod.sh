#!/usr/bin/env bash
# Runs the DaemonSet's pod template of the base, legacy-kernel and privileged
# kustomizations with `podman kube play` (as rendered by `kubectl kustomize`, see
# deploy_kubernetes_pod.mjs for the three fields changed), with the ConfigMap it mounts,
# and checks each pod for real: ready, the capabilities and mounts the manifest asks for,
# the ConfigMap's config in /etc/execflow, exact exec counts, a clean stop.
#   usage: deploy_kubernetes_pod.sh [REPO]
set -euo pipefail
REPO=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
. "$REPO/tests/e2e/deploy_lib.sh"

need_root "podman with BPF capabilities"
need_cmd podman runc curl jq setpriv python3 kubectl node
need_npm_tools
[[ -r /sys/kernel/btf/vmlinux ]] || skip_or_fail "no /sys/kernel/btf/vmlinux on this kernel"
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing ||
  fail "cannot mount tracefs at /sys/kernel/tracing"

start=$SECONDS
work=$(mktemp -d)
pods=()
bpffs=()
cleanup() {
  local rc=$? p
  for p in "${pods[@]}"; do
    if podman pod exists "$p" 2>/dev/null; then
      ((rc == 0)) || { echo "--- $p log"; podman logs "$p-exporter" 2>&1 | tail -n 30; } >&2
      podman pod rm -f "$p" >/dev/null 2>&1 || true
    fi
  done
  # Unmounting the pods' bpf filesystems releases their pins: the programs detach.
  for p in "${bpffs[@]}"; do umount "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
ln -s "$EXECFLOW_TOOLS/node_modules" "$work/node_modules"
cp "$REPO/tests/e2e/deploy_kubernetes_pod.mjs" "$work/"

# kube play has no --runtime or --ulimit: give it the same through containers.conf.
cat >"$work/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$podman_nofile:$podman_nofile", "nproc=4096:4096"]
[engine]
runtime = "runc"
CONF
export CONTAINERS_CONF="$work/containers.conf"

if ! podman image exists "$EXECFLOW_TEST_IMAGE"; then
  build_image "$work/build.log"
fi
seccomp_profile "$work/seccomp.json"

# play OVERLAY SECCOMP CAPS: CAPS is the hex capability set the pod's process must have
# ("" for the privileged overlay: everything the host has).
play() {
  local overlay=$1 seccomp=$2 caps=$3 dir="$REPO/deploy/kubernetes/$1" out="$work/$1" port uid pid pod
  mkdir -p "$out"
  [[ "$overlay" == base ]] || dir="$REPO/deploy/kubernetes/overlays/$overlay"
  kubectl kustomize "$dir" >"$out/rendered.yaml" || fail "kubectl kustomize $dir failed"
  port=$(free_port)
  # The pod's /sys/fs/bpf is a bpf filesystem of the test's own, and its /run/execflow a
  # folder of the test's: it pins and saves as on a node, and leaves nothing on this one.
  mkdir -p "$out/host/bpffs" "$out/host/run"
  mount -t bpf bpf "$out/host/bpffs" || fail "$overlay: cannot mount a bpf filesystem"
  bpffs+=("$out/host/bpffs")
  (cd "$work" && node deploy_kubernetes_pod.mjs "$out/rendered.yaml" "$EXECFLOW_TEST_IMAGE" "$port" "$seccomp" "$out" "$out/host") >/dev/null ||
    fail "$overlay: cannot turn the DaemonSet into a pod"
  pod=$(awk '$1 == "name:" {print $2; exit}' <(sed -n '/^metadata:/,/^spec:/p' "$out/pod.yaml"))
  podman pod rm -f "$pod" >/dev/null 2>&1 || true
  pods+=("$pod")
  # kube play converts the HTTP probes into podman healthchecks, which run through
  # systemd timers; without systemd (here) it only complains. The test probes itself.
  podman kube play --configmap "$out/configmap.yaml" --seccomp-profile-root "$work" \
    "$out/pod.yaml" >"$out/play.log" 2>&1 || { cat "$out/play.log" >&2; fail "$overlay: podman kube play failed"; }
  local ctr="$pod-exporter" url="http://127.0.0.1:$port"
  running() { [[ $(podman inspect -f '{{.State.Running}}' "$ctr") == true ]]; }
  wait_ready "$url" running
  [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url/healthz") == 200 ]] || fail "$overlay: /healthz is not 200"

  pid=$(podman inspect -f '{{.State.Pid}}' "$ctr")
  # A container gets no capability the host's bounding set lacks (this CI machine's has
  # no CAP_SYS_RESOURCE, for one).
  local host_bnd
  host_bnd=$(awk '$1 == "CapBnd:" {print $2}' /proc/self/status)
  if [[ -n "$caps" ]]; then
    local want
    want=$(printf '%016x' $((0x$caps & 0x$host_bnd)))
    [[ "$want" == "$caps" ]] || echo "note: $overlay asks for capabilities $caps; this host can grant only $want"
    check_process "$pid" "$want"
  else
    # Every capability, CAP_SETPCAP included, which lets execflow empty its bounding set
    # too when it drops them after attaching: nothing is left (and no seccomp filter).
    local set
    for set in CapBnd CapPrm CapEff CapAmb; do
      [[ $(awk -v k="$set:" '$1 == k {print $2}' "/proc/$pid/status") == 0000000000000000 ]] ||
        fail "$overlay: $set is not empty once the programs are attached"
    done
  fi
  # The mounts the manifest asks for, read-only, and the root filesystem read-only.
  local mp
  for mp in / /etc/execflow /sys/kernel/btf /sys/kernel/tracing /sys/fs/cgroup /var/log/pods /var/log/containers; do
    awk -v m="$mp" '$5 == m {split($6, o, ","); found = 1; ok = (o[1] == "ro")} END {exit !(found && ok)}' \
      "/proc/$pid/mountinfo" || fail "$overlay: $mp is not mounted read-only in the pod"
  done
  cmp -s "/proc/$pid/root/etc/execflow/execflow.yaml" "$REPO/config/execflow.yaml" ||
    fail "$overlay: /etc/execflow/execflow.yaml in the pod is not config/execflow.yaml"

  uid=$((440000 + ($$ + ${#pods[@]} * 997) % 10000))
  check_exec_counts "$url" "$uid" 25
  podman pod stop -t 10 "$pod" >/dev/null
  local rc
  rc=$(podman inspect -f '{{.State.ExitCode}}' "$ctr")
  [[ "$rc" == 0 ]] || fail "$overlay: exit code $rc after SIGTERM, want 0"
  podman pod rm -f "$pod" >/dev/null
  # What a restarted pod adopts: the pins (the programs still attached) and the state file.
  local f
  for f in bpffs/execflow/exec/stamp bpffs/execflow/tcp/stamp bpffs/execflow/tcp/maps/tcp_flows run/state.json; do
    [[ -e "$out/host/$f" ]] || fail "$overlay: no $f under the pod's hostPath mounts after a clean stop"
  done
  echo "ok: $overlay pod ran as its manifest says, pinned and saved its state ($((SECONDS - start)) s)"
}

play base seccomp.json 000000c000000000        # CAP_BPF, CAP_PERFMON
play legacy-kernel - 0000000001200000          # CAP_SYS_ADMIN, CAP_SYS_RESOURCE; podman's own RuntimeDefault
play privileged - ""

echo "PASS: the DaemonSet's pod runs under podman kube play for base, legacy-kernel and privileged ($((SECONDS - start)) s)"
