"""The kernel matrix: execflow on Debian's stock kernels, x86-64 and arm64, and on the
running (CI) kernel.

For each kernel: `--config.check` with the bundled default config and with each mode
the kernel must refuse, then exactness runs (tests/vm/guest.py) with the default config
and with each mode forced. The table below says, per kernel, which modes must load; a mode that
must load and does not fails with the exporter's reason (the verifier's last lines), and
a mode that must be refused and loads fails too. Stock kernels boot under qemu
(tests/vm/vm.py); "ci" is the kernel this runs on, without a VM. The arm64 kernels run
the arm64 cross build (scripts/build-arm64.sh) under qemu-system-aarch64.

    python3 tests/vm/matrix.py --build build                 # every kernel
    python3 tests/vm/matrix.py --build build --kernels 6.1   # one kernel
    python3 tests/vm/matrix.py --build-arm64 build-arm64 --kernels arm64-6.12
    python3 tests/vm/matrix.py --build build --docs docs/kernels.md   # rewrite the doc table

Exit 0 when every kernel met its table, 1 otherwise, 77 when it cannot run (not root,
no qemu): a failure under CI=true.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))
import e2e_lib as lib  # noqa: E402
import vm  # noqa: E402

ALL = {
    "exec.hook": ["tp_btf", "tracepoint"],
    "exec.failures_hook": ["fexit", "tracepoint"],
    "tcp.hook": ["fexit", "kprobe", "tp_btf", "tracepoint"],
    # Receives have the same four modes, available where the send's are: always forced alike.
    "tcp.receive_hook": ["fexit", "kprobe", "tp_btf", "tracepoint"],
    "tcp.close_hook": ["tp_btf", "tracepoint"],
    "events.transport": ["ringbuf", "perfbuf"],
    # Not forced: chosen by the modes above (counter_storage()).
    "tcp.counter_storage": ["socket", "flow_map"],
}

# What each kernel must do. "loads": the modes that must load (every other mode of ALL
# must be refused, with a reason containing refused[mode]); "auto": what the default
# config must choose; "sendpage": whether the function modes also hook tcp_sendpage;
# "socket_storage": whether the TCP collector counts in socket storage where its send,
# receive and close modes are tracing programs (fexit or tp_btf, close tp_btf): 5.12+
# (socket storage from tracing programs, the atomic exchange) with BPF iterators.
OLD_TCP_REFUSED = {"tp_btf": "BTF type ID of 'sock_send_length'",
                   "tracepoint": "no tracepoint sock/sock_send_length",
                   "socket": "tcp.counter_storage socket: "}
# Kernels before the sock_*_length tracepoints (6.3): fexit and kprobe for sends; the
# default config takes fexit. Kernels where every mode loads: the default takes fexit too.
OLD = {"loads": {"tcp.hook": ["fexit", "kprobe"]}, "refused": OLD_TCP_REFUSED,
       "auto": {"exec": "tp_btf", "failures": "fexit", "tcp": "fexit", "close": "tp_btf", "transport": "ringbuf"},
       "sendpage": True, "socket_storage": False}
EVERY_MODE = {"loads": {}, "refused": {}, "auto": OLD["auto"], "sendpage": False, "socket_storage": True}
KERNELS = {
    "5.10": OLD,
    "6.1": {**OLD, "socket_storage": True},
    # Its guest runs qemu's TCG on one host thread: the faults runs (kill -9 under churn) run
    # there too, in the default config's socket storage mode (tests/vm/guest.py, emulated()).
    "6.12": {**EVERY_MODE, "faults_under_tcg": True},
    # sid's newest kernel (7.2 when this was written), found in sid's package index at
    # each run, on both architectures.
    "sid": EVERY_MODE,
    # arm64 before 6.0 has no BPF trampolines: fexit is refused (the kernel's ENOTSUPP),
    # so the function send and receive modes are kprobe's, failed execs the tracepoints'.
    # Their attachments are BPF links only from 5.15, so the exec and tcp collectors
    # cannot pin them: their counts restart with the exporter ("unpinned").
    "arm64-5.10": {"loads": {"tcp.hook": ["kprobe"], "exec.failures_hook": ["tracepoint"]},
                   "refused": {**OLD_TCP_REFUSED, "fexit": "ENOTSUPP"}, "unpinned": ["exec", "tcp"],
                   "auto": {**OLD["auto"], "failures": "tracepoint", "tcp": "kprobe"},
                   "sendpage": True, "socket_storage": False},
    "arm64-6.12": EVERY_MODE,
    "arm64-sid": EVERY_MODE,
    # This machine's 6.18: fexit programs are refused (EPERM) and kprobes are compiled out;
    # BPF iterators are refused too (EPERM), so socket storage mode cannot load.
    "ci": {"loads": {"tcp.hook": ["tp_btf", "tracepoint"], "exec.failures_hook": ["tracepoint"]},
           "refused": {"fexit": "Operation not permitted", "kprobe": "no kprobes",
                       "socket": "tcp.counter_storage socket: "},
           "auto": {**OLD["auto"], "failures": "tracepoint", "tcp": "tp_btf"},
           "sendpage": False, "socket_storage": False},
}
VM_TIMEOUT = 1800  # seconds per guest: a hard limit, the guest is killed after it
LOG_LOCK = threading.Lock()  # guests run side by side (--jobs)
# Privileged tests run on every kernel too: what the perf buffer path calls in each mode
# that loads there, exec event times, nothing after the NULs of an event's strings
# (5.10 leaves an older comm's bytes after the NUL in the kernel's own copy), and exec
# events' exact arguments, cut at the bound (each exec hook, each transport).
# Short-lived containers keep their names in both cgroup_mkdir modes.
PRIVILEGED_TESTS = "HelperFloor.*:*ExecEventTime*:*ExecEventBytes*:*ExecEventArgs*:*ExecFailureEvents*"
# The TCP collector's socket storage mode (refused on this machine): whether it loads, and
# bytes a send racing the close leaves (everywhere); its exact counts in tp_btf mode, with the
# flow map beside it (where tp_btf loads).
TCP_STORAGE_TESTS = ":TcpSocketStorage.*:*TcpRacedClose*"
TCP_TP_BTF_TESTS = ":*TcpExactTest*:*TcpDirectionTest*"
# ShortLivedContainers (the cgroup_mkdir programs race containers that go at once) is
# the longest of these under emulation (1.5 to 2 minutes a row) and does not depend on
# the architecture: it runs on the oldest kernel (5.10) and on this machine's ("ci").
SHORT_LIVED_KERNELS = ("5.10", "ci")

# The hook and attach type each mode attaches, by group.
SEND_HOOKS = {
    "fexit": [["tcp_sendmsg", "fexit"]],
    "kprobe": [["tcp_sendmsg", "kprobe"], ["tcp_sendmsg", "kretprobe"]],
    "tp_btf": [["sock_send_length", "tp_btf"]],
    "tracepoint": [["sock/sock_send_length", "tracepoint"]],
}
RECV_HOOKS = {
    "fexit": [["tcp_recvmsg", "fexit"]],
    "kprobe": [["tcp_recvmsg", "kprobe"], ["tcp_recvmsg", "kretprobe"]],
    "tp_btf": [["sock_recv_length", "tp_btf"]],
    "tracepoint": [["sock/sock_recv_length", "tracepoint"]],
}
SENDPAGE_HOOKS = {"fexit": [["tcp_sendpage", "fexit"]],
                  "kprobe": [["tcp_sendpage", "kprobe"], ["tcp_sendpage", "kretprobe"]]}
# The cgroup collector (workloads.hook, never forced here: auto takes tp_btf, 5.5+).
CGROUP_HOOKS = [["cgroup_mkdir", "tp_btf"]]
EXEC_HOOKS = {"tp_btf": [["sched_process_exec", "tp_btf"]],
              "tracepoint": [["sched/sched_process_exec", "tracepoint"]]}
# The syscall functions' names carry the architecture.
SYSCALL_PREFIX = {"amd64": "__x64_sys_", "arm64": "__arm64_sys_"}


def failure_hooks(kernel, mode):
    if mode == "tracepoint":
        return [["syscalls/sys_" + e + "_" + call, "tracepoint"] for e in ("enter", "exit")
                for call in ("execve", "execveat")]
    prefix = SYSCALL_PREFIX[arch(kernel)]
    return [[prefix + "execve", "fexit"], [prefix + "execveat", "fexit"]]


def arch(kernel):
    return "amd64" if kernel == "ci" else vm.arch_of(kernel)


CLOSE_HOOKS = {"tp_btf": [["inet_sock_set_state", "tp_btf"]],
               "tracepoint": [["sock/inet_sock_set_state", "tracepoint"]]}
# Socket storage mode: the socket's destruction moves its last bytes.
STORAGE_HOOKS = [["tcp_destroy_sock", "tp_btf"]]
# With either kprobe mode: the entries of exiting threads go in the kernel (tp_btf
# loads on every kernel of the matrix).
THREAD_EXIT_HOOKS = [["sched_process_exit", "tp_btf"]]


def loads(kernel, key, mode):
    if key == "tcp.counter_storage":
        return mode == "flow_map" or KERNELS[kernel]["socket_storage"]
    if key == "tcp.receive_hook":  # tcp_recvmsg and sock_recv_length live where their send twins do
        key = "tcp.hook"
    return mode in KERNELS[kernel]["loads"].get(key, ALL[key])


def counter_storage(kernel, forced):
    """Where the TCP collector must count first (tcp.counter_storage auto): `forced` holds every mode."""
    tracing = all(forced[k] in ("fexit", "tp_btf") for k in ("tcp.hook", "tcp.receive_hook"))
    if KERNELS[kernel]["socket_storage"] and tracing and forced["tcp.close_hook"] == "tp_btf":
        return "socket"
    return "flow_map"


def expected_programs(kernel, forced):
    """The (hook, attach type) pairs a run must attach: `forced` holds every mode."""
    tcp_mode = forced["tcp.hook"]
    p = (EXEC_HOOKS[forced["exec.hook"]] + failure_hooks(kernel, forced["exec.failures_hook"]) +
         SEND_HOOKS[tcp_mode] + RECV_HOOKS[forced["tcp.receive_hook"]] + CLOSE_HOOKS[forced["tcp.close_hook"]] +
         CGROUP_HOOKS)
    if counter_storage(kernel, forced) == "socket":
        p += STORAGE_HOOKS
    if KERNELS[kernel]["sendpage"]:
        p += SENDPAGE_HOOKS.get(tcp_mode, [])
    if "kprobe" in (tcp_mode, forced["tcp.receive_hook"]):
        p += THREAD_EXIT_HOOKS
    return sorted(p)


def alternate(key, i, kernel=None):
    """The i-th of the modes of `key` in turn: of those that load on `kernel` when given."""
    modes = [m for m in ALL[key] if kernel is None or loads(kernel, key, m)]
    return modes[i % len(modes)]


def config_checks(kernel):
    """`--config.check` with the default config; with each mode this kernel must refuse
    (the rest on auto), to check the refusal and its reason; and with each exec or close
    mode and transport that no run of this kernel puts together (runs(): on kernels with
    one send mode that loads). Every other mode that loads is proven by a run."""
    out = [{}]
    for key in ("exec.hook", "exec.failures_hook", "tcp.hook", "tcp.close_hook", "tcp.counter_storage",
                "events.transport"):
        for mode in ALL[key]:
            if not loads(kernel, key, mode):
                out.append({key: mode, "tcp.receive_hook": mode} if key == "tcp.hook" else {key: mode})
    ran = [with_auto(kernel, r["forced"]) for r in runs(kernel) if must_load(kernel, with_auto(kernel, r["forced"]))]
    for key in ("exec.hook", "tcp.close_hook"):
        for mode in ALL[key]:
            for transport in ALL["events.transport"]:
                if not any(r[key] == mode and r["events.transport"] == transport for r in ran):
                    out.append({key: mode, "events.transport": transport})
    return out


def runs(kernel):
    """The default config (exec and close tp_btf, ring buffer), each send mode forced
    (kprobe mode's exporter in a PID namespace of its own), and, where the send modes
    that load do not already do it, one more run, so that on every kernel each mode of
    every group runs exactly, and each exec and each close mode meets each transport: the
    send modes take, in turn, exec and close tracepoint with the ring buffer, tp_btf with
    the perf buffer, tracepoint with the perf buffer and tp_btf with the ring buffer; the
    last run takes both tracepoints with the perf buffer. Failed execs alternate between
    the modes that load."""
    out = [{"name": "default", "forced": {}}]
    loading = [t for t in ALL["tcp.hook"] if loads(kernel, "tcp.hook", t)]
    for tcp in ALL["tcp.hook"]:
        # The send modes that load take the pairs in turn (those refused only show it).
        i = loading.index(tcp) if tcp in loading else ALL["tcp.hook"].index(tcp)
        forced = {"exec.hook": alternate("exec.hook", i + 1),
                  # one that loads: a run is about its send mode (arm64 5.10 has no fexit)
                  "exec.failures_hook": alternate("exec.failures_hook", i // 2, kernel),
                  "tcp.hook": tcp,
                  "tcp.receive_hook": tcp,
                  "tcp.close_hook": alternate("tcp.close_hook", i + 1),
                  "events.transport": alternate("events.transport", i + i // 2)}
        run = {"name": f"tcp {tcp}", "forced": forced, "exact": loads(kernel, "tcp.hook", tcp)}
        if tcp == "kprobe":
            # As in the DaemonSet's pod: kprobe mode must not depend on seeing host thread ids.
            run["own_pid_namespace"] = True
        out.append(run)
    exact = [r["forced"] for r in out[1:] if r["exact"]]
    if not all(any(f[key] == "tracepoint" and f["events.transport"] == "perfbuf" for f in exact)
               for key in ("exec.hook", "tcp.close_hook")):
        out.append({"name": "exec tracepoint + perfbuf",
                    "forced": {"exec.hook": "tracepoint", "exec.failures_hook": "tracepoint",
                               "tcp.hook": loading[0], "tcp.receive_hook": loading[0],
                               "tcp.close_hook": "tracepoint", "events.transport": "perfbuf"}})
    if KERNELS[kernel]["socket_storage"]:
        # The default run counts in socket storage by fexit with the ring buffer; this one by
        # the other tracing send mode there is (tp_btf, 6.3+) with the perf buffer.
        tracing = "tp_btf" if loads(kernel, "tcp.hook", "tp_btf") else "fexit"
        out.append({"name": f"tcp {tracing} in socket storage + perfbuf",
                    "forced": with_auto(kernel, {"tcp.hook": tracing, "tcp.receive_hook": tracing,
                                                 "tcp.close_hook": "tp_btf", "events.transport": "perfbuf"})})
    return out


def with_auto(kernel, forced):
    """`forced` completed with what auto must choose on this kernel."""
    auto = KERNELS[kernel]["auto"]
    return {"exec.hook": auto["exec"], "exec.failures_hook": auto["failures"], "tcp.hook": auto["tcp"],
            "tcp.receive_hook": auto["tcp"], "tcp.close_hook": auto["close"], "events.transport": auto["transport"], **forced}


def must_load(kernel, forced):
    return all(loads(kernel, k, v) for k, v in forced.items())


def judge(kernel, report, results):
    """Checks a guest's report against the kernel's table; returns the failures."""
    fails = []
    auto = KERNELS[kernel]["auto"]
    if not report.get("done"):
        fails.append("the guest did not finish (time limit or crash)")
    for cc in report.get("config_checks", []):
        forced = cc["forced"]
        name = "--config.check " + (", ".join(f"{k}={v}" for k, v in forced.items()) or "default config")
        if must_load(kernel, forced):
            want = expected_programs(kernel, with_auto(kernel, forced))
            got = sorted(a.split("/", 1)[::-1] for a in cc["attached"])
            if cc["exit_code"] != 0 or got != want:
                fails.append(f"{name}: must load {want}; exit {cc['exit_code']}, attached {got}: "
                             f"{cc['last_line']}")
        else:
            bad = [v for k, v in forced.items() if not loads(kernel, k, v)]
            reason = KERNELS[kernel]["refused"].get(bad[0], "")
            if cc["exit_code"] == 0 or reason not in cc["last_line"]:
                fails.append(f"{name}: must be refused ({bad[0]}: '{reason}'); exit {cc['exit_code']}: "
                             f"{cc['last_line']}")
    for c in report.get("privileged_tests", []):
        if not c["ok"]:
            fails.append(f"{c['name']}: {c['got']}")
    if report.get("done") and not report.get("privileged_tests"):
        fails.append("no privileged test ran")
    for c in report.get("faults", []):
        if not c["ok"]:
            fails.append(f"{c['name']}: {c['got']}")
    if (report.get("done") and kernel != "ci" and not report.get("faults_not_run")
            and len(report.get("faults", [])) != 2):
        fails.append("the faults runs did not run")
    if report.get("faults_not_run") and KERNELS[kernel].get("faults_under_tcg"):
        fails.append("the faults runs must run on this kernel, under TCG on one thread")
    for r in report.get("runs", []):
        forced = r["forced"]
        if not forced:  # the default config (the default run, the restart run)
            forced = with_auto(kernel, {})
        if not must_load(kernel, forced):
            if r["started"]:
                fails.append(f"run {r['name']}: must be refused but started")
            continue
        if not r["started"]:
            fails.append(f"run {r['name']}: must start; refused: {r.get('refusal')}")
            continue
        want = expected_programs(kernel, forced)
        if r.get("programs") != want:
            fails.append(f"run {r['name']}: attached {r['programs']}, want {want}")
        if r.get("transport") != forced["events.transport"]:
            fails.append(f"run {r['name']}: transport {r['transport']}, want {forced['events.transport']}")
        if r.get("counter_storage") != counter_storage(kernel, forced):
            fails.append(f"run {r['name']}: tcp counter storage {r.get('counter_storage')}, "
                         f"want {counter_storage(kernel, forced)}")
        for c in r["checks"]:
            if not c["ok"]:
                fails.append(f"run {r['name']}: {c['name']}: expected {c['expected']}, got {c['got']}")
        results.append(r)
    return fails


def plan_for(kernel, build):
    busybox = shutil.which("busybox")
    return {
        "exporter": os.path.join(build, "execflow_exporter"),
        "workload": os.path.join(build, "execflow_vm_workload"),
        "proginfo": os.path.join(build, "execflow_bench_load"),
        "default_config": os.path.join(lib.REPO, "config", "execflow.yaml"),
        # A static binary execs fastest under emulation.
        "exec_argv": [busybox, "true"] if busybox else ["/bin/true"],
        "uid_base": 3_500_000_000 + (os.getpid() % 1000) * 100,
        "config_checks": config_checks(kernel),
        "privileged_tests": {"binary": os.path.join(build, "tests", "integration_tests"),
                             "filter": PRIVILEGED_TESTS + TCP_STORAGE_TESTS +
                             (TCP_TP_BTF_TESTS if loads(kernel, "tcp.hook", "tp_btf") else "") +
                             (":*ShortLivedContainers*" if kernel in SHORT_LIVED_KERNELS else "")},
        "runs": runs(kernel),
        # Restarts under fire (tests/e2e/faults_e2e.py); CTest runs it on this kernel itself.
        "faults_kills": 0 if kernel == "ci" else 20,
        "faults_under_tcg": KERNELS[kernel].get("faults_under_tcg", False),
        # Where the default config counts TCP bytes on this kernel: the faults runs check it.
        "faults_storage": counter_storage(kernel, with_auto(kernel, {})),
        # What the default config cannot pin on this kernel (the restart run's expectation).
        "unpinned": KERNELS[kernel].get("unpinned", []),
    }


def run_kernel(kernel, build, accel, work):
    """Runs guest.py on `kernel` with the binaries of `build` (the arm64 tree for arm64
    kernels); its (release, report, seconds)."""
    out = os.path.join(work, kernel)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "plan.json"), "w") as f:
        json.dump(plan_for(kernel, build), f, indent=1)
    guest = os.path.join(HERE, "guest.py")
    plan, report = os.path.join(out, "plan.json"), os.path.join(out, "report.json")
    t0 = time.monotonic()
    if kernel == "ci":
        subprocess.run([sys.executable, guest, plan, report], check=False)
        release = os.uname().release
    else:
        kdir = vm.fetch_kernel(kernel)
        # The output folder is /tmp/out in the guest.
        script = (f"cd {lib.REPO}\nuname -r\n"
                  f"exec python3 {guest} /tmp/out/plan.json /tmp/out/report.json\n")
        a = arch(kernel)
        # An arm64 guest's root is an arm64 Debian root: the repository and the arm64 build
        # are shared at their own paths.
        shares = () if a == "amd64" else tuple(
            {lib.REPO, build} if os.path.relpath(build, lib.REPO).startswith("..") else {lib.REPO})
        rc = vm.run_guest(kdir, script, out, VM_TIMEOUT, accel, arch=a, root=vm.guest_root(a, build), shares=shares,
                          one_tcg_thread=KERNELS[kernel].get("faults_under_tcg", False))
        with LOG_LOCK:  # one guest's log in one piece
            lib.log(f"\n=== kernel {kernel}: the guest's log ===")
            lib.log(vm.tail(os.path.join(out, "guest.log"), 400))
            if rc is None:
                lib.log(f"matrix: {kernel}: guest did not finish; console:\n{vm.tail(os.path.join(out, 'console.log'))}")
        release = os.path.basename(vm.kernel_files(kdir)[1])
    seconds = time.monotonic() - t0
    try:
        with open(report) as f:
            data = json.load(f)
    except (OSError, ValueError):
        data = {}
    return release, data, seconds


def doc_rows(kernel, release, report, seconds, fails, accel):
    """One Markdown row per kernel: modes that load, result, time."""
    loaded = {}
    for r in report.get("runs", []):
        if r.get("started"):
            for k, v in (r["forced"] or with_auto(kernel, {})).items():
                loaded.setdefault(k, set()).add(v)
        if r.get("started") and r.get("counter_storage"):
            loaded.setdefault("tcp.counter_storage", set()).add(r["counter_storage"])
    def modes(key):
        return ", ".join(m for m in ALL[key] if m in loaded.get(key, ()))
    checks = sum(len(r["checks"]) for r in report.get("runs", []) if r.get("started"))
    runs_started = sum(1 for r in report.get("runs", []) if r.get("started"))
    tests = len(report.get("privileged_tests", []))
    result = "pass" if not fails else f"FAIL ({len(fails)})"
    faults = ", faults not run (TCG)" if report.get("faults_not_run") else (
        f", {len(report['faults'])} faults runs ({counter_storage(kernel, with_auto(kernel, {}))} storage)"
        if report.get("faults") else "")
    where = "this machine" if kernel == "ci" else accel if arch(kernel) == "amd64" else "tcg"
    return (f"| {kernel} ({release}) | {modes('exec.hook')} | {modes('exec.failures_hook')} | {modes('tcp.hook')} | "
            f"{modes('tcp.close_hook')} | {modes('tcp.counter_storage')} | {modes('events.transport')} | {runs_started} runs, "
            f"{checks} exact checks, {tests} privileged tests{faults}: {result} | {seconds:.0f} s ({where}) |")


def size_rows(kernel, release, results):
    """One Markdown row per program and hook mode that ran on this kernel: the verifier's
    instruction count and the translated and JIT-compiled sizes (the same program differs
    by transport, whose branches the verifier removes), and its run time per run in the
    runs that measured it (forced modes; under emulation, times of the emulated CPU)."""
    seen, times = {}, {}
    for r in results:
        for program, hook, insns, xlated, jited in r.get("program_sizes", []):
            k = (program, hook, insns, xlated, jited)
            seen.setdefault(k, set()).add(r["transport"])
            runs, ns = (r.get("ns_per_run") or {}).get(program, (0, 0))
            if runs:
                times.setdefault(k, []).append((ns, runs))

    def cost(k):
        if k not in times:
            return "–"
        ns = sorted(n for n, _ in times[k])
        return f"{ns[len(ns) // 2]:,} ns ({sum(r for _, r in times[k]):,} runs)"
    return [f"| {kernel} ({release}) | `{p}` | {h} | {f'{i:,}' if i else 'not reported'} | {x:,} / {j:,} | "
            f"{', '.join(sorted(t))} | {cost((p, h, i, x, j))} |" for (p, h, i, x, j), t in sorted(seen.items())]


SIZE_HEADER = ("| kernel | program | hook | verified insns | xlated / jited bytes | transport | "
               "ns per run: median of the runs (runs) |\n|---|---|---|---|---|---|---|")


DOC_HEADER = ("| kernel | exec modes that load | failed-exec modes | tcp send and receive modes that load | "
              "tcp close modes | tcp counter storage | transports | result | time |\n|---|---|---|---|---|---|---|---|---|")


def write_docs(path, tables):
    """Replaces each table between its markers: tables maps a marker name to its text."""
    with open(path) as f:
        text = f.read()
    for name, table in tables.items():
        begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
        i, j = text.index(begin), text.index(end) + len(end)
        text = text[:i] + f"{begin}\n{table}\n{end}" + text[j:]
    with open(path, "w") as f:
        f.write(text)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build", default=os.path.join(lib.REPO, "build"))
    p.add_argument("--build-arm64", default=os.path.join(lib.REPO, "build-arm64"),
                   help="the arm64 cross build (scripts/build-arm64.sh) the arm64 kernels run")
    p.add_argument("--kernels", default=",".join(KERNELS), help="default: every kernel")
    p.add_argument("--accel", choices=["kvm", "tcg"], help="default: KVM if it boots, else TCG")
    p.add_argument("--work", help="folder for plans, reports and guest logs (default: temporary)")
    p.add_argument("--docs", help="rewrite the table in this Markdown file (docs/kernels.md)")
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                   help="guests at once (default: 2 where there are 2 CPUs; an emulated guest "
                        "keeps about one busy); the ci kernel runs alone, after them")
    a = p.parse_args()
    if os.geteuid() != 0:
        lib.skip_or_fail("the kernel matrix loads BPF programs and must run as root")
    kernels = a.kernels.split(",")
    builds = {"amd64": os.path.abspath(a.build), "arm64": os.path.abspath(a.build_arm64)}
    for tree in {builds[arch(k)] for k in kernels}:
        for exe in ("execflow_exporter", "execflow_vm_workload", "execflow_bench_load", "tests/integration_tests"):
            if not os.access(os.path.join(tree, exe), os.X_OK):
                lib.skip_or_fail(f"{tree}/{exe} not built" +
                                 (" (scripts/build-arm64.sh)" if tree == builds["arm64"] else ""))
    if any(k != "ci" for k in kernels):
        for tool in ("busybox", "cpio") + tuple(vm.QEMU[a][0][0] for a in {arch(k) for k in kernels if k != "ci"}):
            lib.need_tool(tool)
    work = a.work or tempfile.mkdtemp(prefix="execflow-matrix-")
    accel = vm.Accel(a.accel)
    def one(kernel):
        lib.log(f"=== kernel {kernel}: started ===")
        release, report, seconds = run_kernel(kernel, builds[arch(kernel)], accel, work)
        with LOG_LOCK:  # each kernel's verdict in one piece
            lib.log(f"\n=== kernel {kernel} ===")
            results = []
            fails = judge(kernel, report, results)
            for f in fails:
                lib.log(f"FAIL {kernel}: {f}")
            lib.log(f"=== kernel {kernel} ({release}): {'pass' if not fails else 'FAIL'} in {seconds:.0f}s")
        return release, report, seconds, fails, results

    with ThreadPoolExecutor(max(1, a.jobs)) as pool:
        done = dict(zip([k for k in kernels if k != "ci"], pool.map(one, [k for k in kernels if k != "ci"])))
    done.update({k: one(k) for k in kernels if k == "ci"})
    rows, sizes, all_fails, times = [], [], {}, []
    for kernel in kernels:
        release, report, seconds, fails, results = done[kernel]
        all_fails[kernel] = fails
        times.append((kernel, seconds))
        rows.append(doc_rows(kernel, release, report, seconds, fails, accel.mode))
        sizes += size_rows(kernel, release, results)
    lib.log("\n" + SIZE_HEADER + "\n" + "\n".join(sizes))
    lib.log("\n" + DOC_HEADER + "\n" + "\n".join(rows))
    lib.log("\ntime per kernel: " + ", ".join(f"{k} {s:.0f}s" for k, s in times) +
            f"; reports in {work}")
    if a.docs:
        write_docs(a.docs, {"matrix": DOC_HEADER + "\n" + "\n".join(rows),
                            "matrix-sizes": SIZE_HEADER + "\n" + "\n".join(sizes)})
    return 1 if any(all_fails.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
