#!/usr/bin/env python3
"""Where execflow's time goes in the benchmark's workloads (issue 12), from a whole-system
`perf record` (software cpu-clock sampling: this VM has no PMU for `bpftool prog profile`).

For each workload it starts the exporter with config/execflow.yaml (unpinned), samples
every CPU while `execflow_bench_load` runs the workload, and splits the workload's samples
by what execflow runs: each tracepoint's dispatch (paid by any program on it), each
program's own instructions and the helpers it calls (hash lookup, ring buffer, clock, file
name copy), the syscall tracing the failed-exec tracepoints switch on for every syscall,
and the exporter's own user space. Prints Markdown tables for docs/profiles.md.

Usage (as root, after tests/bench/run.sh built build-bench/):
  tests/isolated.sh python3 tests/bench/profile.py [--build build-bench] [--seconds 20]
"""
import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
import e2e_lib as lib  # noqa: E402
WORKLOADS = [
    ("exec storm (fork+exec /bin/true, 2 workers)", ["exec", "{seconds}", "2"]),
    ("TCP 64 B writes (writer and reader)", ["tcp", "{seconds}", "64"]),
]
NOT_THE_WORKLOAD = re.compile(r"^(swapper|ksoftirqd|kworker|rcu_|perf|migration|kdamond|execflow_export)")
DISPATCH = re.compile(r"^(bpf_trace_run\d|__bpf_trace_|__traceiter_|migrate_(dis|en)able|__rcu_read_(un)?lock"
                      r"|bpf_prog_start_time)")


# The CPU's return and indirect-call thunks (speculation mitigations) a program's calls go through.
THUNKS = ("srso_alias_return_thunk", "srso_return_thunk", "__x86_return_thunk", "__x86_indirect_thunk_rax")


def classify(syms):
    """What of execflow a sample's stack (leaf first) is, or None."""
    if any(s.startswith(("perf_syscall_exit", "perf_syscall_enter")) for s in syms) or \
            syms[0] in ("syscall_exit_work", "syscall_trace_enter"):
        return "syscall tracing switched on by the failed-exec tracepoints (every syscall)"
    prog = next((s for s in syms if s.startswith("bpf_prog_")), None)
    run = next((i for i, s in enumerate(syms) if s.startswith("bpf_trace_run")), None)
    if prog is None and run is None:
        return None
    hook = syms[run + 1] if run is not None and run + 1 < len(syms) else "?"
    name = prog.split("_", 3)[-1] if prog else None
    leaf = syms[0]
    if name is None or DISPATCH.match(leaf):
        return f"dispatch of `{hook}` (an empty program pays it too)"
    if leaf.startswith("bpf_prog_") or leaf in THUNKS:
        return f"`{name}`: its own instructions"
    if "htab" in leaf or leaf.startswith(("lookup_nulls_elem_raw", "jhash", "memcmp")):
        return f"`{name}`: hash map lookup"
    if "ringbuf" in leaf or "spin_lock" in leaf or "spin_unlock" in leaf:
        return f"`{name}`: ring buffer reserve and submit"
    if leaf.startswith(("ktime", "read_tsc")) or "clock" in leaf:
        return f"`{name}`: clock"
    if leaf.startswith(("strncpy", "bpf_probe_read", "copy_from_kernel")):
        return f"`{name}`: string copy"
    if leaf.startswith("bpf_"):
        return f"`{name}`: other helpers"
    return None  # an interrupt that came while the program ran: not its cost


def profile(perf_script):
    """{category: samples}, the workload's samples, the exporter's user-space samples."""
    cats, total, exporter = collections.Counter(), 0, 0
    for block in perf_script.split("\n\n"):
        lines = block.strip().split("\n")
        if not lines or not lines[0].strip():
            continue
        comm = lines[0].split()[0]
        syms = [re.sub(r"\+0x[0-9a-f]+$", "", l.split()[1]) for l in lines[1:] if len(l.split()) > 1]
        if comm.startswith("execflow_export"):
            if syms and not syms[0].startswith(("bpf_", "_raw", "do_syscall")):
                exporter += 1
            continue
        if NOT_THE_WORKLOAD.match(comm) or not syms:
            continue
        total += 1
        c = classify(syms)
        if c:
            cats[c] += 1
    return cats, total, exporter


def start_exporter(build, tmp):
    """The exporter with config/execflow.yaml, unpinned; (process, address)."""
    text = open(os.path.join(REPO, "config", "execflow.yaml")).read()
    config = os.path.join(tmp, "execflow.yaml")
    with open(config, "w") as f:
        f.write(text.replace("pin_path: /sys/fs/bpf/execflow", 'pin_path: "off"'))
    return lib.start_exporter(os.path.join(build, "execflow_exporter"), tmp, config)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build-bench"))
    ap.add_argument("--seconds", type=int, default=20)
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("profile.py: run as root")
    rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short=7", "HEAD"], capture_output=True,
                         text=True).stdout.strip()
    print(f"_Profiled {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} at revision `{rev}` by "
          f"`tests/bench/profile.py --seconds {a.seconds}` (`perf record -a -g -F 2999 -e cpu-clock`)._\n")
    with tempfile.TemporaryDirectory(prefix="execflow-profile-") as tmp:
        exporter, _ = start_exporter(a.build, tmp)
        try:
            for title, argv in WORKLOADS:
                data = os.path.join(tmp, "perf.data")
                load = [os.path.join(a.build, "execflow_bench_load")] + [x.format(seconds=a.seconds) for x in argv]
                subprocess.run(["perf", "record", "-q", "-o", data, "-a", "-g", "-F", "2999", "-e", "cpu-clock",
                                "--", *load], check=True, stdout=subprocess.DEVNULL)
                script = subprocess.run(["perf", "script", "-i", data], capture_output=True, text=True).stdout
                cats, total, user = profile(script)
                print(f"**{title}**: {total:,} samples of the workload's own processes\n")
                print("| what | share of the workload's samples |\n|---|---|")
                for k, v in sorted(cats.items(), key=lambda kv: -kv[1]):
                    print(f"| {k} | {100 * v / total:.2f}% |")
                print(f"| the exporter's own user space (event consumer, on any CPU) | {100 * user / total:.2f}% |")
                ours = sum(cats.values()) + user
                print(f"| **all of execflow** | **{100 * ours / total:.2f}%** |\n")
        finally:
            exporter.stop()


if __name__ == "__main__":
    main()
