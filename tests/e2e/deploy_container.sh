#!/usr/bin/env bash
# Builds deploy/container/Containerfile with podman and runs the image as the DaemonSet
# does: all capabilities dropped but BPF and PERFMON, no-new-privileges, read-only root
# without a writable /tmp, read-only host mounts of /sys/kernel/btf and the tracefs,
# its own network namespace with the port published on 127.0.0.1 only. Then it checks
# the process really runs with exactly those capabilities, scrapes the exporter and
# sees exec counts move by the exact number of execs it makes under a UID of its own.
#   usage: deploy_container.sh [REPO]
# env: EXECFLOW_BASE_IMAGE  Debian 12 base image tag (built with debootstrap if absent)
#      KEEP_IMAGE=1         keep the built image (its layers stay cached either way)
set -euo pipefail
REPO=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
. "$REPO/tests/e2e/deploy_lib.sh"

need_root "podman with BPF capabilities"
need_cmd podman runc curl jq setpriv
[[ -r /sys/kernel/btf/vmlinux ]] || skip_or_fail "no /sys/kernel/btf/vmlinux on this kernel"

base_image="${EXECFLOW_BASE_IMAGE:-localhost/execflow/debian:bookworm}"
image=localhost/execflow:e2e
name="execflow-e2e-$$"
uid=$((420000 + $$ % 10000)) # no process of this machine runs as this UID
execs=25
start=$SECONDS

# runc, not crun (fails on this machine's hybrid cgroups); explicit ulimits, because the
# defaults podman asks for exceed the hard limits here.
nofile=$(ulimit -Hn); [[ "$nofile" == unlimited || "$nofile" -gt 65536 ]] && nofile=65536
podman_opts=(--runtime runc --ulimit "nofile=$nofile:$nofile" --ulimit nproc=4096:4096)

work=$(mktemp -d)
cleanup() {
  local rc=$?
  if podman container exists "$name" 2>/dev/null; then
    ((rc == 0)) || { echo "--- container log"; podman logs "$name" 2>&1 | tail -n 40; } >&2
    podman rm -f -t 2 "$name" >/dev/null 2>&1 || true
  fi
  [[ "${KEEP_IMAGE:-0}" == 1 ]] || podman rmi -f "$image" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# The classic tracepoints the exporter uses for failed execs live in tracefs.
if ! mountpoint -q /sys/kernel/tracing; then
  mount -t tracefs tracefs /sys/kernel/tracing || fail "cannot mount tracefs at /sys/kernel/tracing"
fi

# 1. Base image (debootstrap, cached in podman's store) and the image itself.
if ! podman image exists "$base_image"; then
  need_cmd debootstrap
  "$REPO/deploy/container/make-base-image.sh" "$base_image"
fi
echo "--- podman build ($((SECONDS - start)) s)"
# --network host: the build stage runs apt-get against Debian's mirror.
podman build "${podman_opts[@]}" --network host --pull=never \
  --build-arg "BASE_IMAGE=$base_image" \
  -f "$REPO/deploy/container/Containerfile" -t "$image" "$REPO" >"$work/build.log" 2>&1 || {
  tail -n 60 "$work/build.log" >&2; fail "podman build failed"; }
echo "built $image ($((SECONDS - start)) s)"

# 2. The image holds the binary, its libraries and the config, and nothing to run else.
size=$(podman image inspect -f '{{.Size}}' "$image")
((size < 64 * 1024 * 1024)) || fail "image is $size bytes: more than the binary and its libraries"
version=$(podman run --rm "${podman_opts[@]}" --network none "$image" --version 2>&1) ||
  fail "execflow_exporter --version failed in the image: $version"
[[ "$version" == execflow_exporter* ]] || fail "unexpected --version output: $version"
if podman run --rm "${podman_opts[@]}" --network none --entrypoint /bin/sh "$image" -c true >/dev/null 2>&1; then
  fail "the image has a shell: the runtime stage should hold the exporter only"
fi

# 3. Seccomp: podman's default profile here (containers-common 0.50) allows bpf() and
# perf_event_open() only with CAP_SYS_ADMIN. containerd >= 1.7 and Docker >= 23 also
# allow them with CAP_BPF and CAP_PERFMON; give podman's profile those two rules.
jq '(.syscalls[] | select(.action == "SCMP_ACT_ERRNO" and (.excludes.caps // []) == ["CAP_SYS_ADMIN"])
      | .names) |= map(select(. != "bpf" and . != "perf_event_open"))
    | .syscalls += [
        {"names": ["bpf"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_BPF"]}},
        {"names": ["perf_event_open"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_PERFMON"]}}]' \
  /usr/share/containers/seccomp.json >"$work/seccomp.json" ||
  fail "cannot derive a seccomp profile from /usr/share/containers/seccomp.json"

# 4. Run it like the DaemonSet.
least_priv=(--cap-drop=ALL --cap-add=BPF --cap-add=PERFMON
  --security-opt no-new-privileges --security-opt "seccomp=$work/seccomp.json"
  --read-only --read-only-tmpfs=false
  -v /sys/kernel/btf:/sys/kernel/btf:ro -v /sys/kernel/tracing:/sys/kernel/tracing:ro)
# --config.check also tries to load the BPF programs, so it needs the same privileges.
cfg=$(podman run --rm "${podman_opts[@]}" "${least_priv[@]}" --network none "$image" \
  --config.check --config.file=/etc/execflow/execflow.yaml 2>&1) ||
  fail "the image's default config does not pass --config.check: $cfg"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
podman run -d --name "$name" "${podman_opts[@]}" "${least_priv[@]}" \
  -p "127.0.0.1:$port:9741" "$image" >/dev/null || fail "podman run failed"
url="http://127.0.0.1:$port"

ready=0
for _ in $(seq 1 60); do
  [[ $(podman inspect -f '{{.State.Running}}' "$name") == true ]] || fail "the container exited during start-up"
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url/readyz" || true)
  [[ "$code" == 200 ]] && { ready=1; break; }
  sleep 0.5
done
((ready)) || fail "/readyz did not answer 200 within 30 s (last: $code)"
[[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url/healthz") == 200 ]] || fail "/healthz is not 200"
echo "ready after $((SECONDS - start)) s"

# 5. The process has exactly CAP_BPF (39) and CAP_PERFMON (38), no-new-privs, a seccomp
# filter and a read-only root.
pid=$(podman inspect -f '{{.State.Pid}}' "$name")
status=$(cat "/proc/$pid/status")
want_caps=000000c000000000
for set in CapPrm CapEff CapBnd; do
  got=$(awk -v k="$set:" '$1 == k {print $2}' <<<"$status")
  [[ "$got" == "$want_caps" ]] || fail "$set is $got, want $want_caps (BPF and PERFMON only)"
done
[[ $(awk '$1 == "CapAmb:" {print $2}' <<<"$status") == 0000000000000000 ]] || fail "ambient capabilities set"
[[ $(awk '$1 == "NoNewPrivs:" {print $2}' <<<"$status") == 1 ]] || fail "no_new_privs is not set"
[[ $(awk '$1 == "Seccomp:" {print $2}' <<<"$status") == 2 ]] || fail "no seccomp filter"
awk '$5 == "/" {split($6, o, ","); exit !(o[1] == "ro")}' "/proc/$pid/mountinfo" ||
  fail "the container's root filesystem is not mounted read-only"

# 6. Exec counts move by exactly the number of execs made under our UID; a failed exec
# is counted with its errno.
metric() { # metric NAME LABELS -> value, 0 when absent
  curl -sf --max-time 5 "$url/metrics" |
    awk -v m="$1{$2}" 'index($0, m " ") == 1 {v = $2} END {print v == "" ? 0 : v}'
}
metrics=$(curl -sf --max-time 5 "$url/metrics") || fail "GET /metrics failed"
grep -q '^execflow_bpf_program_info{.*attach_type="tracepoint"' <<<"$metrics" ||
  fail "no classic tracepoint attached: is tracefs readable through the read-only mount?"
before=$(metric execflow_execs_total "uid=\"$uid\"")
fbefore=$(metric execflow_exec_failures_total "uid=\"$uid\",errno=\"ENOENT\"")
for _ in $(seq 1 "$execs"); do
  setpriv --reuid="$uid" --regid="$uid" --clear-groups /bin/true
done
setpriv --reuid="$uid" --regid="$uid" --clear-groups /nonexistent/execflow-e2e 2>/dev/null && fail "exec of a missing file succeeded"
after=$before fafter=$fbefore
for _ in $(seq 1 20); do # the counters are read from kernel maps: no delay expected
  after=$(metric execflow_execs_total "uid=\"$uid\"")
  fafter=$(metric execflow_exec_failures_total "uid=\"$uid\",errno=\"ENOENT\"")
  [[ $((after - before)) -ge $execs && $((fafter - fbefore)) -ge 1 ]] && break
  sleep 0.2
done
[[ $((after - before)) == "$execs" ]] ||
  fail "execflow_execs_total{uid=\"$uid\"} moved by $((after - before)), want exactly $execs"
[[ $((fafter - fbefore)) == 1 ]] ||
  fail "execflow_exec_failures_total{uid=\"$uid\",errno=\"ENOENT\"} moved by $((fafter - fbefore)), want 1"
echo "execflow_execs_total{uid=\"$uid\"}: $before -> $after ($execs execs)"

# The events endpoint serves JSON and has seen our execs (it keeps only the last N events,
# so other activity on the machine may have pushed some of ours out).
events=$(curl -sf --max-time 5 "$url/api/v1/events") || fail "GET /api/v1/events failed"
seen=$(jq --argjson u "$uid" '[.[] | select(.uid == $u and .filename == "/bin/true")] | length' <<<"$events") ||
  fail "/api/v1/events is not a JSON array of events"
((seen >= 1)) || fail "/api/v1/events has no exec of /bin/true by uid $uid"

# 7. SIGTERM stops it cleanly.
podman stop -t 10 "$name" >/dev/null
rc=$(podman inspect -f '{{.State.ExitCode}}' "$name")
[[ "$rc" == 0 ]] || fail "exit code $rc after SIGTERM, want 0"

echo "PASS: container image built and ran with CAP_BPF+CAP_PERFMON only, read-only, $execs execs counted ($((SECONDS - start)) s)"
