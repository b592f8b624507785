#!/usr/bin/env bash
# Builds deploy/container/Containerfile with podman and runs the image as the DaemonSet
# does: all capabilities dropped but BPF and PERFMON, no-new-privileges, read-only root
# without a writable /tmp, read-only host mounts of /sys/kernel/btf and the tracefs,
# its own network namespace with the port published on 127.0.0.1 only. Then it checks
# the process really runs with exactly those capabilities, scrapes the exporter and
# sees exec counts move by the exact number of execs it makes under a UID of its own.
# Then it runs the image listening on [::] and scrapes it over IPv6, and over HTTPS.
# The image stays in podman's store as localhost/execflow:e2e for deploy_kubernetes_pod.
#   usage: deploy_container.sh [REPO]
set -euo pipefail
REPO=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
. "$REPO/tests/e2e/deploy_lib.sh"

need_root "podman with BPF capabilities"
need_cmd podman runc curl jq setpriv python3 openssl
[[ -r /sys/kernel/btf/vmlinux ]] || skip_or_fail "no /sys/kernel/btf/vmlinux on this kernel"

image=$EXECFLOW_TEST_IMAGE
name="execflow-e2e-$$"
uid=$((420000 + $$ % 10000)) # no process of this machine runs as this UID
start=$SECONDS

work=$(mktemp -d)
cleanup() {
  local rc=$?
  if podman container exists "$name" 2>/dev/null; then
    ((rc == 0)) || { echo "--- container log"; podman logs "$name" 2>&1 | tail -n 40; } >&2
    podman rm -f -t 2 "$name" >/dev/null 2>&1 || true
  fi
  podman rm -f -t 0 "$name-workload" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# The classic tracepoints the exporter uses for failed execs live in tracefs.
if ! mountpoint -q /sys/kernel/tracing; then
  mount -t tracefs tracefs /sys/kernel/tracing || fail "cannot mount tracefs at /sys/kernel/tracing"
fi

# 1. Base image (debootstrap, cached) and the image itself.
build_image "$work/build.log"
echo "built $image ($((SECONDS - start)) s)"

# 2. The image holds the binary, its libraries and the config, and nothing to run else.
size=$(podman image inspect -f '{{.Size}}' "$image")
((size < 64 * 1024 * 1024)) || fail "image is $size bytes: more than the binary and its libraries"
version=$(podman run --rm "${podman_opts[@]}" --network none "$image" --version 2>&1) ||
  fail "execflow_exporter --version failed in the image: $version"
[[ "$version" == execflow_exporter* ]] || fail "unexpected --version output: $version"
if rev=$(git -C "$REPO" rev-parse --short=12 HEAD 2>/dev/null); then
  [[ "$version" == *"revision $rev"* ]] || fail "image reports '$version', not revision $rev"
fi
if podman run --rm "${podman_opts[@]}" --network none --entrypoint /bin/sh "$image" -c true >/dev/null 2>&1; then
  fail "the image has a shell: the runtime stage should hold the exporter only"
fi

# 3. Run it like the DaemonSet, with what names workloads mounted read-only too: the
# host's cgroup v2 hierarchy (its own mount point: /sys/fs/cgroup, or
# /sys/fs/cgroup/unified on hybrid hosts like this one, so the mount itself is the
# read-only one) and the kubelet's log folders.
seccomp_profile "$work/seccomp.json"
cgroup2=$(awk '$9 == "cgroup2" {print $5; exit}' /proc/self/mountinfo)
[[ -n "$cgroup2" ]] || skip_or_fail "no cgroup v2 hierarchy mounted on this host"
mkdir -p /var/log/pods /var/log/containers
least_priv=(--cap-drop=ALL --cap-add=BPF --cap-add=PERFMON
  --security-opt no-new-privileges --security-opt "seccomp=$work/seccomp.json"
  --read-only --read-only-tmpfs=false
  -v /sys/kernel/btf:/sys/kernel/btf:ro -v /sys/kernel/tracing:/sys/kernel/tracing:ro
  -v "$cgroup2:$cgroup2:ro" -v /var/log/pods:/var/log/pods:ro -v /var/log/containers:/var/log/containers:ro)
# --config.check also loads the BPF programs, so it needs the same privileges.
cfg=$(podman run --rm "${podman_opts[@]}" "${least_priv[@]}" --network none "$image" \
  --config.check --config.file=/etc/execflow/execflow.yaml 2>&1) ||
  fail "the image's default config does not pass --config.check: $cfg"

port=$(free_port)
podman run -d --name "$name" "${podman_opts[@]}" "${least_priv[@]}" \
  -p "127.0.0.1:$port:9741" "$image" >/dev/null || fail "podman run failed"
url="http://127.0.0.1:$port"
running() { [[ $(podman inspect -f '{{.State.Running}}' "$name") == true ]]; }
wait_ready "$url" running
[[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url/healthz") == 200 ]] || fail "/healthz is not 200"
echo "ready ($((SECONDS - start)) s)"

# 4. Granted exactly CAP_BPF (39) and CAP_PERFMON (38), holding none of them once
# attached; no-new-privs, seccomp, read-only root.
pid=$(podman inspect -f '{{.State.Pid}}' "$name")
check_process "$pid" 000000c000000000
awk '$5 == "/" {split($6, o, ","); exit !(o[1] == "ro")}' "/proc/$pid/mountinfo" ||
  fail "the container's root filesystem is not mounted read-only"

# 5. Exec counts move exactly; a failed exec is counted with its errno.
# (grep reads all of it: with pipefail, grep -q closing early would fail curl.)
metrics=$(curl -sf --max-time 5 "$url/metrics") || fail "GET /metrics failed"
grep -q '^execflow_bpf_program_info{.*attach_type="tracepoint"' <<<"$metrics" ||
  fail "no classic tracepoint attached: is tracefs readable through the read-only mount?"
check_exec_counts "$url" "$uid" 25
fbefore=$(metric "$url" execflow_exec_failures_total "uid=\"$uid\",errno=\"ENOENT\"")
setpriv --reuid="$uid" --regid="$uid" --clear-groups /nonexistent/execflow-e2e 2>/dev/null &&
  fail "exec of a missing file succeeded"
fafter=$(metric "$url" execflow_exec_failures_total "uid=\"$uid\",errno=\"ENOENT\"")
[[ $((fafter - fbefore)) == 1 ]] ||
  fail "execflow_exec_failures_total{uid=\"$uid\",errno=\"ENOENT\"} moved by $((fafter - fbefore)), want 1"

# The events endpoint serves JSON and has seen our execs (it keeps only the last N events,
# so other activity on the machine may have pushed some of ours out).
events=$(curl -sf --max-time 5 "$url/api/v1/events") || fail "GET /api/v1/events failed"
seen=$(jq --argjson u "$uid" '[.[] | select(.uid == $u and .filename == "/bin/true")] | length' <<<"$events") ||
  fail "/api/v1/events is not a JSON array of events"
((seen >= 1)) || fail "/api/v1/events has no exec of /bin/true by uid $uid"

# 6. Another container's execs carry its id (12 hex digits, as podman ps prints it) as
# the container label, and so do its events: its shell and 30 /bin/true, counted while it
# still runs (it then waits for a line on its stdin).
mkfifo "$work/stdin"
exec 4<>"$work/stdin"
podman run -i --name "$name-workload" "${podman_opts[@]}" --network none "$EXECFLOW_BASE_IMAGE" \
  sh -c 'i=0; while [ $i -lt 30 ]; do /bin/true; i=$((i + 1)); done; read line' <&4 >/dev/null &
workload=$!
cid=
for _ in $(seq 1 50); do
  cid=$(podman inspect -f '{{.Id}}' "$name-workload" 2>/dev/null) && [[ -n "$cid" ]] && break
  sleep 0.2
done
[[ -n "$cid" ]] || fail "the workload container did not start"
short=${cid:0:12}
# runc's own "runc init" exec (of its cloned binary, through /dev/fd/N) can land in the container's cgroup too when runc moves the
# child there before that exec completes (a race inside runc: 0, 1 or 2 of its /proc/self/exe and /dev/fd/N execs): it is counted, and it is
# an event of the container like the others, so it is told apart by its file name.
got=0 seen=0 runc=0
for _ in $(seq 1 50); do
  got=$(metric "$url" execflow_execs_total "container=\"$short\"")
  events=$(curl -sf --max-time 5 "$url/api/v1/events")
  seen=$(jq --arg c "$short" '[.[] | select(.container == $c)] | length' <<<"$events")
  runc=$(jq --arg c "$short" '[.[] | select(.container == $c and (.filename | test("runc|/proc/self/exe|memfd|^/dev/fd/")))] | length' <<<"$events")
  ((got >= 31 + runc && seen >= 31 + runc)) && break
  sleep 0.2
done
echo >&4
wait "$workload" || fail "the workload container failed"
podman rm "$name-workload" >/dev/null
files=$(jq -c --arg c "$short" '[.[] | select(.container == $c) | .filename] | group_by(.) | map({(.[0]): length}) | add' <<<"$events")
echo "container $short: events by file name: $files"
trues=$(jq --arg c "$short" '[.[] | select(.container == $c and .filename == "/bin/true")] | length' <<<"$events")
[[ "$trues" == 30 ]] || fail "/api/v1/events has $trues execs of /bin/true in container $short, want 30"
((runc <= 2)) || fail "$runc runc init execs in container $short, want at most 2 (/proc/self/exe, /dev/fd/N)"
[[ "$got" == $((31 + runc)) ]] ||
  fail "execflow_execs_total{container=\"$short\"} is $got, want exactly 31 (+$runc runc init)"
[[ "$seen" == $((31 + runc)) ]] || fail "/api/v1/events has $seen events of container $short, want 31 (+$runc runc init)"
echo "container $short: 31 execs and 31 events labelled with it (+$runc runc init)"

# 7. SIGTERM stops it cleanly.
podman stop -t 10 "$name" >/dev/null
rc=$(podman inspect -f '{{.State.ExitCode}}' "$name")
[[ "$rc" == 0 ]] || fail "exit code $rc after SIGTERM, want 0"
podman rm "$name" >/dev/null

# 8. IPv6: the image's civetweb (Debian 13's) listens on [::]. In the host's network
# namespace (--network host), so that the test reaches it at [::1]; otherwise run as in 3.
# civetweb's IPv6 listeners are IPv6-only: nothing answers on 127.0.0.1 at that port.
port6=$(free_port6)
podman run -d --name "$name" "${podman_opts[@]}" "${least_priv[@]}" --network host "$image" \
  --config.file=/etc/execflow/execflow.yaml "--web.listen-address=[::]:$port6" >/dev/null ||
  fail "podman run with --web.listen-address=[::]:$port6 failed"
url6="http://[::1]:$port6"
wait_ready "$url6" running
metrics=$(curl -sfg --max-time 5 "$url6/metrics") || fail "GET $url6/metrics failed"
build=$(grep '^execflow_build_info{' <<<"$metrics") || fail "no execflow_build_info in $url6/metrics"
[[ "$build" == *'revision="'"${rev:-}"* && "${build##* }" == 1 ]] ||
  fail "$url6/metrics: '$build', want execflow_build_info{...revision=\"${rev:-}\"...} 1"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port6/readyz" || true)
[[ "$code" == 000 ]] || fail "http://127.0.0.1:$port6/readyz answered $code: [::]:$port6 should be IPv6 only"
check_exec_counts "$url6" "$uid" 10
podman stop -t 10 "$name" >/dev/null
rc=$(podman inspect -f '{{.State.ExitCode}}' "$name")
[[ "$rc" == 0 ]] || fail "exit code $rc after SIGTERM (listening on [::]:$port6), want 0"
echo "IPv6: served on [::]:$port6, scraped at [::1]:$port6, 127.0.0.1:$port6 refused"
podman rm "$name" >/dev/null

# 9. HTTPS, run as in 3. Debian 13's civetweb, like Debian 12's, dlopens libssl.so and
# wants SSL_get_peer_certificate: the compatibility libraries built against Debian 13's
# OpenSSL answer it (exporter/http/tls.h).
mkdir "$work/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=localhost \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$work/tls/key.pem" -out "$work/tls/cert.pem" 2>/dev/null ||
  fail "openssl could not make a test certificate"
printf 'tls_server_config:\n  cert_file: /tls/cert.pem\n  key_file: /tls/key.pem\n' >"$work/tls/web.yml"
port=$(free_port)
podman run -d --name "$name" "${podman_opts[@]}" "${least_priv[@]}" -v "$work/tls:/tls:ro" \
  -p "127.0.0.1:$port:9741" "$image" --config.file=/etc/execflow/execflow.yaml \
  --web.config.file=/tls/web.yml --web.listen-address=:9741 >/dev/null || fail "podman run with TLS failed"
url="https://127.0.0.1:$port"
wait_ready --cacert "$work/tls/cert.pem" "$url" running
build=$(curl -sf --cacert "$work/tls/cert.pem" --max-time 5 "$url/metrics" | grep '^execflow_build_info{') ||
  fail "no execflow_build_info in $url/metrics"
[[ "${build##* }" == 1 ]] || fail "$url/metrics: '$build', want value 1"
podman stop -t 10 "$name" >/dev/null
rc=$(podman inspect -f '{{.State.ExitCode}}' "$name")
[[ "$rc" == 0 ]] || fail "exit code $rc after SIGTERM (HTTPS), want 0"
echo "HTTPS: served with the image's TLS compatibility libraries"

echo "PASS: container image built and ran with CAP_BPF+CAP_PERFMON only, read-only, on IPv6 and over HTTPS ($((SECONDS - start)) s)"
