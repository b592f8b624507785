# Shared by tests/e2e/deploy_*.sh: sourced, not run.

# A test that lacks something it needs prints SKIP and exits 77, which CTest reports as
# skipped (SKIP_RETURN_CODE 77). Under CI=true the same lack is a failure: CI has
# every dependency installed (scripts/install-deps.sh).
skip_or_fail() {
  if [[ "${CI:-}" == true ]]; then
    echo "FAIL: $* (CI=true: missing prerequisites are failures)" >&2
    exit 1
  fi
  echo "SKIP: $*"
  exit 77
}

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

need_cmd() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || skip_or_fail "$c not found (scripts/packages/deploy.txt)"
  done
}

need_root() {
  [[ $(id -u) == 0 ]] || skip_or_fail "needs root ($*)"
}

# npm tools from scripts/packages/deploy.npm.txt, installed by scripts/install-deps.sh.
EXECFLOW_TOOLS="${EXECFLOW_TOOLS:-/opt/execflow-tools}"
need_npm_tools() {
  local spec name
  while read -r spec; do
    [[ -z "$spec" || "$spec" == \#* ]] && continue
    name="${spec%@*}"
    [[ -f "$EXECFLOW_TOOLS/node_modules/$name/package.json" ]] ||
      skip_or_fail "npm package $spec not in $EXECFLOW_TOOLS (scripts/install-deps.sh installs it)"
  done <"$REPO/scripts/packages/deploy.npm.txt"
}

# ---- podman ----------------------------------------------------------------------------
# runc, not crun (crun fails on this machine's hybrid cgroups), and explicit ulimits,
# because podman's defaults exceed the hard limits here.
podman_nofile=$(ulimit -Hn)
[[ "$podman_nofile" == unlimited || "$podman_nofile" -gt 65536 ]] && podman_nofile=65536
podman_opts=(--runtime runc --ulimit "nofile=$podman_nofile:$podman_nofile" --ulimit nproc=4096:4096)
# The image's base: Debian 13, as the Containerfile's default. The tag names the suite
# (make-base-image.sh debootstraps it).
EXECFLOW_BASE_IMAGE="${EXECFLOW_BASE_IMAGE:-localhost/execflow/debian:trixie}"
# Debian 12, as this host: deploy_systemd.sh runs the host-built binary on it with the
# packages of the host's libraries.
EXECFLOW_HOST_BASE_IMAGE="${EXECFLOW_HOST_BASE_IMAGE:-localhost/execflow/debian:bookworm}"
EXECFLOW_TEST_IMAGE=localhost/execflow:e2e

# ensure_base_image [TAG]: TAG (default EXECFLOW_BASE_IMAGE) by debootstrap once, then
# cached in podman's store.
ensure_base_image() {
  local tag=${1:-$EXECFLOW_BASE_IMAGE}
  if ! podman image exists "$tag"; then
    need_cmd debootstrap
    "$REPO/deploy/container/make-base-image.sh" "$tag"
  fi
}

# build_image LOG: deploy/container/Containerfile -> $EXECFLOW_TEST_IMAGE. Unchanged
# layers come from podman's cache. --network host: the build stage runs apt-get.
build_image() {
  ensure_base_image
  podman build "${podman_opts[@]}" --network host --pull=never \
    --build-arg "BASE_IMAGE=$EXECFLOW_BASE_IMAGE" \
    --build-arg "REVISION=$(git -C "$REPO" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)" \
    -f "$REPO/deploy/container/Containerfile" -t "$EXECFLOW_TEST_IMAGE" "$REPO" >"$1" 2>&1 || {
    tail -n 60 "$1" >&2; fail "podman build failed"; }
}

# seccomp_profile OUT: podman's default profile (containers-common 0.50 on Debian 12)
# allows bpf() and perf_event_open() only with CAP_SYS_ADMIN; containerd >= 1.7 and
# Docker >= 23 also allow them with CAP_BPF and CAP_PERFMON. Add those two rules.
seccomp_profile() {
  jq '(.syscalls[] | select(.action == "SCMP_ACT_ERRNO" and (.excludes.caps // []) == ["CAP_SYS_ADMIN"])
        | .names) |= map(select(. != "bpf" and . != "perf_event_open"))
      | .syscalls += [
          {"names": ["bpf"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_BPF"]}},
          {"names": ["perf_event_open"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_PERFMON"]}}]' \
    /usr/share/containers/seccomp.json >"$1" ||
    fail "cannot derive a seccomp profile from /usr/share/containers/seccomp.json"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A port free on [::] and on 0.0.0.0, for a listener on [::] in the host's network.
free_port6() {
  python3 -c 'import socket
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", 0))
print(s.getsockname()[1])'
}

# ---- the running exporter --------------------------------------------------------------
# wait_ready [--cacert CA] URL [CHECK_CMD...]: /readyz 200 within 30 s; CHECK_CMD (if
# given) must keep succeeding meanwhile (e.g. "the container is still running"). URLs
# may be IPv6 (http://[::1]:9741): curl -g keeps the brackets from being read as a glob;
# an https URL is verified against CA.
wait_ready() {
  local ca=() code=
  if [[ "$1" == --cacert ]]; then ca=(--cacert "$2"); shift 2; fi
  local url=$1
  shift
  for _ in $(seq 1 60); do
    if (($#)) && ! "$@"; then fail "the exporter exited during start-up"; fi
    code=$(curl -sg "${ca[@]}" -o /dev/null -w '%{http_code}' --max-time 2 "$url/readyz" || true)
    [[ "$code" == 200 ]] && return 0
    sleep 0.5
  done
  fail "/readyz did not answer 200 within 30 s (last: ${code:-none})"
}

# metric URL NAME LABELS: the sample's value, 0 when absent.
metric() {
  curl -sfg --max-time 5 "$1/metrics" | metric_text "$2" "$3"
}

# metric_text NAME LABELS <METRICS: the same, from an exposition read on stdin.
metric_text() {
  # The sum over the series of NAME whose labels include every k="v" of LABELS (other
  # labels, such as the empty workload labels on the host, may be there too).
  awk -v name="$1" -v want="$2" '
    BEGIN { n = split(want, pairs, /,/) }
    index($0, name "{") == 1 || (want == "" && index($0, name " ") == 1) {
      labels = "," substr($0, length(name) + 2, index($0, "} ") - length(name) - 2) ","
      ok = 1
      for (i = 1; i <= n; i++) if (index(labels, "," pairs[i] ",") == 0) ok = 0
      if (ok) v += $NF
    }
    END { printf "%.0f\n", v }'
}

# check_process PID BOUNDING [HELD]: the process's bounding set is exactly BOUNDING (hex),
# what the runtime granted; it holds HELD (permitted and effective; default none: execflow
# gives up every capability once its programs are attached), has no ambient set (dropped
# with them), no_new_privs and a seccomp filter.
check_process() {
  local pid=$1 bounding=$2 held=${3:-0000000000000000} status set got want
  status=$(cat "/proc/$pid/status") || fail "no process $pid"
  for set in CapBnd CapPrm CapEff CapAmb; do
    got=$(awk -v k="$set:" '$1 == k {print $2}' <<<"$status")
    case $set in
      CapBnd) want=$bounding ;;
      CapAmb) want=0000000000000000 ;;
      *) want=$held ;;
    esac
    [[ "$got" == "$want" ]] || fail "$set is $got, want $want"
  done
  [[ $(awk '$1 == "NoNewPrivs:" {print $2}' <<<"$status") == 1 ]] || fail "no_new_privs is not set"
  [[ $(awk '$1 == "Seccomp:" {print $2}' <<<"$status") == 2 ]] || fail "no seccomp filter"
}

# check_exec_counts URL UID N: N execs of /bin/true under UID move execflow_execs_total by
# exactly N. The UID is the test's own, so nothing else on the machine adds to it.
check_exec_counts() {
  local url=$1 uid=$2 n=$3 before after
  curl -sfg --max-time 5 "$url/metrics" >/dev/null || fail "GET /metrics failed"
  before=$(metric "$url" execflow_execs_total "uid=\"$uid\"")
  for _ in $(seq 1 "$n"); do setpriv --reuid="$uid" --regid="$uid" --clear-groups /bin/true; done
  after=$before
  for _ in $(seq 1 20); do # counters are read from kernel maps at scrape time
    after=$(metric "$url" execflow_execs_total "uid=\"$uid\"")
    ((after - before >= n)) && break
    sleep 0.2
  done
  [[ $((after - before)) == "$n" ]] ||
    fail "execflow_execs_total{uid=\"$uid\"} moved by $((after - before)), want exactly $n"
  echo "execflow_execs_total{uid=\"$uid\"}: $before -> $after ($n execs)"
}
