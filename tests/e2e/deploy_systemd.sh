#!/usr/bin/env bash
# deploy/systemd: execflow.service, and execflow.socket with the drop-in
# execflow.service.d/systemd-socket.conf (socket activation), in two tests:
#   deploy_systemd.sh verify BINARY  `systemd-analyze verify` on copies of the units whose
#       ExecStart names BINARY; `systemd-analyze security` exposure at most 2.0, with and
#       without the drop-in; the sandboxing directives issue 5 asks for are present; the
#       drop-in changes only how the service listens.
#   deploy_systemd.sh run BINARY     boots systemd in a podman container (Debian 12 base
#       image), installs the units as written with BINARY as /usr/local/bin/execflow_exporter,
#       starts the service, and checks its real credentials (dynamic UID, exactly
#       CAP_BPF+CAP_PERFMON+CAP_DAC_READ_SEARCH, no_new_privs, seccomp), exact exec counts,
#       Restart=on-failure after SIGKILL, and a clean stop. Then socket activation: with
#       the drop-in, nothing runs until the first connection to execflow.socket, which
#       starts the service and is answered by it; the same credentials, its own network
#       namespace, systemd's socket and no other listener; exact exec counts through the
#       socket; a clean stop that leaves the socket listening and nothing queued in it,
#       and the next connection starting the service again.
set -euo pipefail
mode=${1:-}
binary=${2:-}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/e2e/deploy_lib.sh"
unit="$REPO/deploy/systemd/execflow.service"
socket_unit="$REPO/deploy/systemd/execflow.socket"
dropin="$REPO/deploy/systemd/execflow.service.d/systemd-socket.conf"
[[ "$mode" == verify || "$mode" == run ]] && [[ -n "$binary" ]] ||
  { echo "usage: deploy_systemd.sh verify|run BINARY" >&2; exit 2; }
[[ -x "$binary" ]] || fail "$binary is not an executable (build execflow_exporter first)"
binary=$(realpath "$binary")

work=$(mktemp -d)
cleanup_dirs() { rm -rf "$work"; }
trap cleanup_dirs EXIT

if [[ "$mode" == verify ]]; then
  need_cmd systemd-analyze
  # The unit must name /usr/local/bin/execflow_exporter; verify a copy that names the
  # built binary, because verify checks that ExecStart's program exists.
  grep -qx 'ExecStart=/usr/local/bin/execflow_exporter .*' "$unit" ||
    fail "ExecStart must run /usr/local/bin/execflow_exporter"
  sed "s|^ExecStart=/usr/local/bin/execflow_exporter|ExecStart=$binary|" "$unit" >"$work/execflow.service"
  out=$(systemd-analyze verify "$work/execflow.service" 2>&1) || { echo "$out" >&2; fail "systemd-analyze verify failed"; }
  # verify exits 0 on some warnings (unknown directives, bad values): treat any output as failure.
  [[ -z "$out" ]] || { echo "$out" >&2; fail "systemd-analyze verify printed warnings"; }

  # Socket activation: the socket unit, and the service with its drop-in, which verify
  # reads from execflow.service.d next to the unit.
  grep -qx 'ExecStart=/usr/local/bin/execflow_exporter .*--web.systemd-socket' "$dropin" ||
    fail "the drop-in's ExecStart must run /usr/local/bin/execflow_exporter --web.systemd-socket"
  ! grep -q -- '--web.listen-address' "$dropin" || fail "the drop-in must not give --web.listen-address"
  # Only how it listens changes: no other key, so the sandbox stays the unit's.
  keys=$(grep -Ev '^(#|$|\[)' "$dropin" | cut -d= -f1 | sort | uniq -c | awk '{print $2 ":" $1}' | tr '\n' ' ')
  [[ "$keys" == "After:1 ExecStart:2 PrivateNetwork:1 Requires:1 " ]] ||
    fail "the drop-in sets $keys; want Requires, After, ExecStart (reset and set) and PrivateNetwork only"
  for want in 'Requires=execflow.socket' 'After=execflow.socket' 'ExecStart=' 'PrivateNetwork=yes'; do
    grep -qx "$want" "$dropin" || fail "the drop-in has no '$want'"
  done
  for want in 'ListenStream=0.0.0.0:9741' 'Accept=no' 'WantedBy=sockets.target'; do
    grep -qx "$want" "$socket_unit" || fail "execflow.socket has no '$want'"
  done
  [[ $(grep -c '^ListenStream=' "$socket_unit") == 1 ]] || fail "execflow.socket must listen once, on :9741"
  socket_work="$work/socket"
  mkdir -p "$socket_work/execflow.service.d"
  cp "$work/execflow.service" "$socket_unit" "$socket_work/"
  sed "s|^ExecStart=/usr/local/bin/execflow_exporter|ExecStart=$binary|" "$dropin" \
    >"$socket_work/execflow.service.d/systemd-socket.conf"
  out=$(cd "$socket_work" && systemd-analyze verify ./execflow.socket ./execflow.service 2>&1) ||
    { echo "$out" >&2; fail "systemd-analyze verify failed on execflow.socket and the drop-in"; }
  [[ -z "$out" ]] || { echo "$out" >&2; fail "systemd-analyze verify printed warnings on execflow.socket and the drop-in"; }

  # Directives of issue 5, each exactly once with this value.
  for want in \
    'CapabilityBoundingSet=CAP_BPF CAP_PERFMON CAP_DAC_READ_SEARCH' \
    'AmbientCapabilities=CAP_BPF CAP_PERFMON CAP_DAC_READ_SEARCH' \
    'NoNewPrivileges=yes' 'ProtectSystem=strict' 'ProtectHome=yes' 'PrivateTmp=yes' \
    'Restart=on-failure' 'DynamicUser=yes' 'PrivateUsers=no'; do
    key=${want%%=*}
    if [[ "$want" == PrivateUsers=no ]]; then
      ! grep -Eq '^PrivateUsers=(yes|true|1|on)' "$unit" || fail "PrivateUsers must stay off: BPF needs the host's user namespace"
      continue
    fi
    n=$(grep -c "^$key=" "$unit" || true)
    [[ "$n" == 1 ]] || fail "$key= appears $n times, want once"
    grep -qx "$want" "$unit" || fail "want '$want', have '$(grep "^$key=" "$unit")'"
  done
  ! grep -q '^User=root' "$unit" || fail "the unit must not run as root"

  # systemd's own exposure score (0 = locked down, 10 = unprotected); 2.0 is our ceiling.
  if grep -q -- '--offline' <<<"$(systemd-analyze security --help 2>&1)"; then
    sec=$(systemd-analyze security --offline=yes --threshold=20 "$work/execflow.service" 2>&1) || {
      echo "$sec" | grep -E '✗|exposure' >&2
      fail "systemd-analyze security: exposure above 2.0"; }
    echo "${sec##*$'\n'}"
    socket_sec=$(cd "$socket_work" && systemd-analyze security --offline=yes --threshold=20 ./execflow.service 2>&1) || {
      echo "$socket_sec" | grep -E '✗|exposure' >&2
      fail "systemd-analyze security with the systemd-socket drop-in: exposure above 2.0"; }
    # PrivateNetwork=yes is the one change, and systemd counts it.
    grep -q '✓ PrivateNetwork=' <<<"$socket_sec" || fail "with the drop-in, PrivateNetwork= is not in force"
    echo "with socket activation: ${socket_sec##*$'\n'}"
  else
    skip_or_fail "systemd-analyze security --offline needs systemd >= 250"
  fi
  echo "PASS: execflow.service and execflow.socket (with its drop-in) verify and keep their sandbox"
  exit 0
fi

# ---- run: the unit under a real systemd ------------------------------------------------
need_root "systemd in a privileged podman container"
need_cmd podman runc curl setpriv dpkg python3
[[ -r /sys/kernel/btf/vmlinux ]] || skip_or_fail "no /sys/kernel/btf/vmlinux on this kernel"
base_image=$EXECFLOW_HOST_BASE_IMAGE
image=localhost/execflow-systemd:e2e
name="execflow-systemd-e2e-$$"
uid=$((430000 + $$ % 10000))
execs=25
start=$SECONDS
cleanup() {
  local rc=$?
  if podman container exists "$name" 2>/dev/null; then
    ((rc == 0)) || podman exec "$name" journalctl -u execflow -u execflow.socket --no-pager -n 40 >&2 2>/dev/null || true
    podman rm -f -t 2 "$name" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

ensure_base_image "$base_image"
# The Debian packages that hold the binary's libraries (the host is Debian 12 too).
pkgs=$(ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | while read -r lib; do
  dpkg -S "$lib" 2>/dev/null || dpkg -S "$(realpath "$lib")" 2>/dev/null || dpkg -S "$(realpath "$lib" | sed 's|^/usr||')"
done | cut -d: -f1 | sort -u | tr '\n' ' ')
[[ -n "$pkgs" ]] || fail "cannot find the packages of $binary's libraries"
cat >"$work/Containerfile" <<CONTAINERFILE
FROM $base_image
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
      systemd systemd-sysv dbus $pkgs && rm -rf /var/lib/apt/lists/* \\
 && systemctl mask getty@.service console-getty.service systemd-logind.service
STOPSIGNAL SIGRTMIN+3
CMD ["/sbin/init"]
CONTAINERFILE
podman build "${podman_opts[@]}" --network host --pull=never -t "$image" "$work" >"$work/build.log" 2>&1 || {
  tail -n 40 "$work/build.log" >&2; fail "building the systemd test image failed"; }
echo "systemd image ready ($((SECONDS - start)) s)"

port=$(free_port)
# Privileged so that systemd can set up the unit's sandbox (namespaces, mounts, seccomp);
# the unit itself drops to a dynamic user with three capabilities.
podman run -d --name "$name" "${podman_opts[@]}" --privileged --systemd=always \
  -p "127.0.0.1:$port:9741" \
  -v "$(realpath "$binary"):/usr/local/bin/execflow_exporter:ro" \
  -v "$REPO/config/execflow.yaml:/etc/execflow/execflow.yaml:ro" \
  -v "$unit:/etc/systemd/system/execflow.service:ro" \
  -v "$socket_unit:/etc/systemd/system/execflow.socket:ro" \
  -v "$dropin:/usr/local/share/execflow/systemd-socket.conf:ro" \
  "$image" >/dev/null || fail "podman run failed"
cid=$(podman inspect -f '{{.Id}}' "$name")
cx() { podman exec "$name" "$@"; }

for _ in $(seq 1 60); do
  state=$(cx systemctl is-system-running 2>/dev/null || true)
  [[ "$state" == running || "$state" == degraded ]] && break
  sleep 0.5
done
[[ "$state" == running || "$state" == degraded ]] || fail "systemd in the container did not boot (state: $state)"
missing=$(cx ldd /usr/local/bin/execflow_exporter | grep 'not found' || true)
[[ -z "$missing" ]] || fail "libraries missing in the test image: $missing"
cx systemctl start execflow || fail "systemctl start execflow failed"
url="http://127.0.0.1:$port"

wait_ready "$url"
echo "service ready ($((SECONDS - start)) s)"

# The service's process as the host kernel sees it.
host_pid() {
  local p
  for p in /proc/[0-9]*; do
    grep -q "libpod-$cid.*/execflow.service" "$p/cgroup" 2>/dev/null || continue
    [[ $(cat "$p/comm" 2>/dev/null) == execflow_export ]] && { echo "${p#/proc/}"; return 0; }
  done
  return 1
}
pid=$(host_pid) || fail "cannot find the service's process"
[[ $(awk '$1 == "Uid:" {print $2}' "/proc/$pid/status") != 0 ]] || fail "the service runs as root"
# Granted CAP_BPF (39), CAP_PERFMON (38), CAP_DAC_READ_SEARCH (2) as ambient capabilities
# (a non-root user); once attached it holds none, ambient ones included.
check_process "$pid" 000000c000000004

# (grep reads all of it: with pipefail, grep -q closing early would fail curl.)
metrics=$(curl -sf --max-time 5 "$url/metrics") || fail "GET /metrics failed"
grep -q '^execflow_bpf_program_info{.*attach_type="tracepoint"' <<<"$metrics" ||
  fail "no classic tracepoint attached: tracefs unreadable for the service?"
check_exec_counts "$url" "$uid" "$execs"

# Restart=on-failure: a killed exporter comes back.
cx systemctl kill -s SIGKILL execflow
restarts=0
for _ in $(seq 1 40); do # RestartSec=5s
  restarts=$(cx systemctl show -P NRestarts execflow)
  [[ "$restarts" -ge 1 && $(cx systemctl is-active execflow || true) == active ]] && break
  sleep 0.5
done
[[ "$restarts" == 1 ]] || fail "NRestarts is $restarts after SIGKILL, want 1 (Restart=on-failure)"
wait_ready "$url"
echo "restarted after SIGKILL ($((SECONDS - start)) s)"

# A stop is clean: SIGTERM, exit status 0, no kill.
cx systemctl stop execflow
result=$(cx systemctl show -P Result execflow)
status=$(cx systemctl show -P ExecMainStatus execflow)
[[ "$result" == success && "$status" == 0 ]] || fail "systemctl stop: Result=$result ExecMainStatus=$status, want success and 0"

echo "plain service: a dynamic user with BPF, PERFMON and DAC_READ_SEARCH only ($((SECONDS - start)) s)"

# ---- socket activation: execflow.socket and the drop-in ------------------------------
cx mkdir -p /etc/systemd/system/execflow.service.d
cx cp /usr/local/share/execflow/systemd-socket.conf /etc/systemd/system/execflow.service.d/
cx systemctl daemon-reload
cx systemctl start execflow.socket || fail "systemctl start execflow.socket failed"
[[ $(cx systemctl is-active execflow.socket || true) == active ]] || fail "execflow.socket is not listening"
sleep 1
[[ $(cx systemctl is-active execflow || true) == inactive ]] || fail "execflow.service started before any connection"
! host_pid >/dev/null || fail "an exporter runs before any connection"

# The first connection starts the service, and the service answers it.
first=$(curl -sSf --max-time 60 "$url/metrics" 2>&1) || fail "the first scrape through execflow.socket failed: ${first:0:300}"
grep -q '^execflow_build_info{' <<<"$first" || fail "the first scrape is not execflow's metrics"
[[ $(cx systemctl is-active execflow || true) == active ]] || fail "execflow.service did not start on the first connection"
[[ $(cx systemctl show -P TriggeredBy execflow) == execflow.socket ]] || fail "execflow.service is not triggered by execflow.socket"
echo "started by the first connection ($((SECONDS - start)) s)"

pid=$(host_pid) || fail "cannot find the socket-activated service's process"
[[ $(awk '$1 == "Uid:" {print $2}' "/proc/$pid/status") != 0 ]] || fail "the socket-activated service runs as root"
check_process "$pid" 000000c000000004
grep -q "^ExecStart=.*--web.systemd-socket" <(cx systemctl cat execflow) || fail "the drop-in is not in force"
# PrivateNetwork=yes: a network namespace of its own, where nothing listens (civetweb's
# placeholder is gone); what it serves is systemd's socket in the container's namespace.
init_pid=$(podman inspect -f '{{.State.Pid}}' "$name")
[[ $(readlink "/proc/$pid/ns/net") != $(readlink "/proc/$init_pid/ns/net") ]] ||
  fail "the socket-activated service shares the host's network namespace (PrivateNetwork=yes?)"
own=$(awk '$4 == "0A"' "/proc/$pid/net/tcp" "/proc/$pid/net/tcp6" | wc -l)
[[ "$own" == 0 ]] || fail "$own sockets listen in the service's own network namespace, want none"
inode=$(awk '$2 ~ /:260D$/ && $4 == "0A" {print $10}' "/proc/$init_pid/net/tcp")  # 9741 = 0x260D
[[ -n "$inode" ]] || fail "nothing listens on :9741 in the container"
fds=$(ls -l "/proc/$pid/fd")
grep -q "socket:\[$inode\]" <<<"$fds" || fail "the service does not hold systemd's :9741 socket"
cx journalctl -u execflow -o cat --no-pager | grep -q 'listening on 0.0.0.0:9741 systemd_socket=true' ||
  fail "the service does not log that it serves 0.0.0.0:9741 from systemd"

check_exec_counts "$url" "$((uid + 1))" "$execs"

# Stopping: exit 0; the socket keeps listening, and nothing the exporter did on its way
# out is left queued in it to start the service again.
cx systemctl stop execflow
result=$(cx systemctl show -P Result execflow)
status=$(cx systemctl show -P ExecMainStatus execflow)
[[ "$result" == success && "$status" == 0 ]] || fail "systemctl stop (socket-activated): Result=$result ExecMainStatus=$status, want success and 0"
[[ $(cx systemctl is-active execflow.socket || true) == active ]] || fail "execflow.socket stopped with the service"
sleep 3
[[ $(cx systemctl is-active execflow || true) == inactive ]] || fail "execflow.service started again by itself after the stop"
! host_pid >/dev/null || fail "an exporter still runs after the stop"
curl -sf --max-time 60 "$url/readyz" >/dev/null || fail "the next connection after a stop was not served"
[[ $(cx systemctl is-active execflow || true) == active ]] || fail "the next connection did not start execflow.service again"
cx systemctl stop execflow.socket execflow
[[ $(cx systemctl is-active execflow.socket execflow | tr '\n' ' ') == "inactive inactive " ]] ||
  fail "execflow.socket and execflow.service did not both stop"
! curl -sf --max-time 5 "$url/readyz" >/dev/null 2>&1 || fail "served after execflow.socket stopped"

echo "PASS: execflow.service ran under systemd as a dynamic user with BPF, PERFMON and DAC_READ_SEARCH only, on its own and started by execflow.socket ($((SECONDS - start)) s)"
