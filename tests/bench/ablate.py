#!/usr/bin/env python3
"""Where one program's time goes, part by part (issue 22): the program as shipped against copies
of it with one part cut out, and against the empty programs of its hook (the floor).

This VM has no hardware PMU, and a sampling profile (tests/bench/profile.py) sees too few
samples inside one program to split it. So each part is measured by taking it out: the script
copies a bpf/*.bpf.c, replaces one piece of its text (a part the program does), builds the copy
with clang as the build does, and loads that one program alone (`execflow_bench_load object`)
while the benchmark's workload runs. The kernel's run-time stats give ns per run; variants take
turns, round after round, so that the machine's drift falls on all of them. A cut whose text is
no longer in the source stops the run: the cuts follow the code or fail.

Usage (as root, after tests/bench/run.sh built build-bench/):
  tests/isolated.sh python3 tests/bench/ablate.py [--load build-bench/execflow_bench_load] [--seconds 8]
      [--rounds 7]
      [--write-doc docs/profiles.md]
"""
import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (its workloads, stats and process helpers)

# (what is cut, file, text, replacement). Each replacement keeps the program valid.
EXEC_CUTS = [
    ("the arguments' copy (`bpf_probe_read_user` of the command line)", "bpf/exec.bpf.c",
     "	if (len == 0 || bpf_probe_read_user(args, len, (const void *)start))",
     "	if (1)"),
    ("the arguments altogether (no read of `mm->arg_start`, no copy)", "bpf/exec.bpf.c",
     "	len = args_to_copy(size);",
     "	len = 0;"),
    ("the file name's copy (`bpf_probe_read_kernel_str`)", "bpf/exec.bpf.c",
     "	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), filename);\n	len = copy_args",
     "	len = copy_args"),
    ("the clock (`bpf_ktime_get_boot_ns`)", "bpf/exec.bpf.c",
     "	e->time_ns = targ_perfbuf ? bpf_ktime_get_ns() : bpf_ktime_get_boot_ns();",
     ""),
    ("the event altogether (only the count)", "bpf/exec.bpf.c",
     "	if (!targ_events)\n		return 0;\n	size = args_size",
     "	return 0;\n	size = args_size"),
    ("the count (`exec_counts` lookup and add)", "bpf/exec.bpf.c",
     "	if (!counter_add(&exec_counts, &key, 1))\n		__sync_fetch_and_add(&loss.uid_overflow, 1);",
     ""),
]
TCP_CUTS = [
    ("the flow map's lookup and adds", "bpf/tcp.bpf.c",
     "	add_to_flow(&key, received ? 0 : ret, received ? ret : 0);",
     "	asm volatile(\"\" : : \"r\"(&key) : \"memory\");"),  # the key still built
    ("the flow key (reads of the socket) and what follows it", "bpf/tcp.bpf.c",
     "	if (!flow_key(sk, &key, trusted) || (!in_socket && own_connection(sk, &key)))\n		return 0;",
     "	return 0;"),
    ("the histogram", "bpf/tcp.bpf.c",
     "	if (!received)\n		count_send_size(ret);\n	add_to_flow",
     "	add_to_flow"),
]
EMPTY = "tests/bench/empty.bpf.c"

# (title, workload key of bench.WORKLOADS, program, cuts, other programs: (label, file, program))
SUBJECTS = [
    ("`exec_btf`, exec storm (fork+exec /bin/true)", "exec", "exec_btf", EXEC_CUTS,
     [("empty program on the hook (floor)", EMPTY, "floor_exec_btf"),
      ("an empty event through the ring buffer (`floor_event_btf`)", EMPTY, "floor_event_btf")]),
    ("`sock_send_btf`, TCP 64 B writes", "small", "sock_send_btf", TCP_CUTS,
     [("socket storage mode's program (`sock_send_sk_btf`, bytes not moved)", "bpf/tcp.bpf.c", "sock_send_sk_btf"),
      ("socket storage lookup and one add (`floor_send_sk_btf`)", EMPTY, "floor_send_sk_btf"),
      ("empty program on the hook (floor)", EMPTY, "floor_send_btf")]),
    ("`sock_recv_btf`, TCP 64 B writes (pinned, batched reader)", "small", "sock_recv_btf", TCP_CUTS[:2],
     [("socket storage mode's program (`sock_recv_sk_btf`)", "bpf/tcp.bpf.c", "sock_recv_sk_btf"),
      ("empty program on the hook (floor)", EMPTY, "floor_recv_btf")]),
    ("`sock_recv_btf`, TCP 64 B writes, plain (unpinned, reader not batched)", "plain", "sock_recv_btf",
     TCP_CUTS[:2],
     [("socket storage mode's program (`sock_recv_sk_btf`)", "bpf/tcp.bpf.c", "sock_recv_sk_btf"),
      ("empty program on the hook (floor)", EMPTY, "floor_recv_btf")]),
]

# What one program alone costs the workload itself (no run-time stats on): TCP 64 B writes with
# nothing attached, with an empty program on the send hook, and with each mode's send program.
RATE_WORKLOAD = ("small", "TCP 64 B writes, loopback (pinned, batched reader)")
RATE_PROGRAMS = [
    ("an empty program on `sock_send_length` (`floor_send_btf`)", EMPTY, "floor_send_btf"),
    ("socket storage lookup and one add (`floor_send_sk_btf`)", EMPTY, "floor_send_sk_btf"),
    ("`sock_send_sk_btf` (socket storage mode, bytes not moved)", "bpf/tcp.bpf.c", "sock_send_sk_btf"),
    ("`sock_send_btf` (flow map mode)", "bpf/tcp.bpf.c", "sock_send_btf"),
]


def clang():
    for c in ["clang"] + [f"clang-{v}" for v in range(30, 13, -1)]:
        if shutil.which(c):
            return c
    raise bench.Failure("no clang")


def build(src_rel, cut, out, rev=None):
    """The BPF object of src_rel (as it was at git revision `rev`, if given) with `cut` (text,
    replacement) applied, as the build compiles it."""
    if rev:
        r = subprocess.run(["git", "-C", REPO, "show", f"{rev}:{src_rel}"], capture_output=True, text=True)
        if r.returncode != 0:
            raise bench.Failure(f"git show {rev}:{src_rel}: {r.stderr.strip()}")
        src = r.stdout
    else:
        with open(os.path.join(REPO, src_rel)) as f:
            src = f.read()
    if cut:
        if src.count(cut[0]) != 1:
            raise bench.Failure(f"{src_rel}: the text of a cut is not there once: {cut[0][:60]!r}")
        src = src.replace(cut[0], cut[1])
    copy = out[:-2] + ".c"
    with open(copy, "w") as f:
        f.write(src)
    arch = {"x86_64": "x86", "aarch64": "arm64"}[platform.machine()]
    multiarch = subprocess.run(["gcc", "-print-multiarch"], capture_output=True, text=True).stdout.strip()
    try:
        r = subprocess.run([clang(), "-g", "-O2", "-target", "bpf", f"-D__TARGET_ARCH_{arch}",
                            "-I", os.path.dirname(os.path.join(REPO, src_rel)),  # its own includes
                            "-I", os.path.join(REPO, "bpf"), "-I", f"/usr/include/{multiarch}",
                            "-c", copy, "-o", out], capture_output=True, text=True)
    finally:
        os.unlink(copy)
    if r.returncode != 0:
        raise bench.Failure(f"clang {src_rel}: {r.stderr.strip()[-400:]}")


def run_one(load, obj, prog, key, seconds, rate=False):
    """ns per run and runs of `prog` of `obj`, loaded alone while workload `key` runs (rate: the
    workload's rate instead; obj None: nothing attached)."""
    if obj is None:
        return bench.run_workload(load, key, seconds)["rate"]
    p = bench.start([load, "object", obj, prog], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        pid = None
        for line in iter(p.stdout.readline, ""):
            if line.strip() == "ready":
                break
            f = dict(kv.split("=", 1) for kv in line.split())
            if "refused" in f:
                raise bench.Failure(f"{prog} of {obj}: refused: {line.strip()}")
            pid = int(f["id"])
        else:
            raise bench.Failure(f"execflow_bench_load object {obj} {prog} exited {bench.finish(p, 10)}")
        res = bench.run_workload(load, key, seconds)
        if rate:
            return res["rate"]
        _, _, runs, ns = bench.bpftool_stats({pid})[pid]
        return ns / runs if runs else None, runs
    finally:
        p.stdin.close()
        bench.finish(p, 10)


def fmt(v):
    return f"{v:,.0f}"


def rates(args, load, tmp):
    """The workload's rate with each of RATE_PROGRAMS alone, against nothing attached, round by round."""
    key, title = RATE_WORKLOAD
    conds = [("nothing attached", None, None)]
    for i, (label, f, prog) in enumerate(RATE_PROGRAMS):
        obj = os.path.join(tmp, f"rate-{i}.o")
        build(f, None, obj)
        conds.append((label, obj, prog))
    per = [[] for _ in conds]
    for r in range(args.rounds):
        order = list(range(len(conds)))
        order = order[r % len(order):] + order[:r % len(order)]
        for i in order:
            per[i].append(run_one(load, conds[i][1], conds[i][2], key, args.seconds, rate=True))
        bench.log(f"rates: round {r + 1}: " + ", ".join(fmt(p[-1]) for p in per))
    out = [f"**{title}: the workload's rate with one program alone** (run-time stats off)", "",
           "| attached | writes/s | / nothing attached (per round) | ns added per write |",
           "|---|---|---|---|"]
    for i, (label, *_rest) in enumerate(conds):
        ratio = [a / b for a, b in zip(per[i], per[0])]
        added = [1e9 / a - 1e9 / b for a, b in zip(per[i], per[0])]  # one writer thread
        m = statistics.median
        out.append(f"| {label} | {fmt(m(per[i]))} ({fmt(min(per[i]))}–{fmt(max(per[i]))}) | "
                   + (" |" if i == 0 else f"{m(ratio):.3f} ({min(ratio):.3f}–{max(ratio):.3f}) | "
                      f"{m(added):+,.0f} ns ({min(added):+,.0f}–{max(added):+,.0f})") + " |")
    return out + [""]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--load", default=os.path.join(REPO, "build-bench", "execflow_bench_load"),
                    help="execflow_bench_load (default: tests/bench/run.sh's build-bench/)")
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--only", help="run only the subjects whose title holds this text")
    ap.add_argument("--against", metavar="REV", help="also each program as it was at this git revision "
                    "(its includes as they are now)")
    ap.add_argument("--write-doc", help="replace the ablation section of this Markdown file")
    args = ap.parse_args()
    if os.geteuid() != 0:
        bench.skip("ablate.py loads BPF programs: run it as root")
    load = os.path.abspath(args.load)
    rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short=7", "HEAD"], capture_output=True,
                         text=True).stdout.strip()
    began = time.time()
    out = [f"_Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} at revision `{rev}` by "
           f"`tests/bench/ablate.py --seconds {args.seconds:g} --rounds {args.rounds}"
           f"{f' --against {args.against}' if args.against else ''}` "
           f"(median of {args.rounds} interleaved rounds, min–max)._", ""]
    with tempfile.TemporaryDirectory() as tmp:
        if not args.only or args.only == "rates":
            out += rates(args, load, tmp)
    stats = bench.start([load, "stats"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    if stats.stdout.readline().strip() != "ready":
        raise bench.Failure("execflow_bench_load stats did not start")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for title, key, prog, cuts, others in SUBJECTS:
                if args.only and args.only not in title:
                    continue
                variants = [("as shipped", "", prog, None, None)]
                if args.against:
                    variants.append((f"at `{args.against}`", "", prog, None, args.against))
                variants += [(f"without {what}", f, prog, (text, repl), None) for what, f, text, repl in cuts]
                variants += [(label, f, p, None, None) for label, f, p in others]
                objs = []
                for i, (label, f, p, cut, at) in enumerate(variants):
                    obj = os.path.join(tmp, f"{prog}-{i}.o")
                    build(f or cuts[0][1], cut, obj, at)
                    objs.append(obj)
                per = [[] for _ in variants]
                runs = [0 for _ in variants]
                for r in range(args.rounds):
                    order = list(range(len(variants)))
                    order = order[r % len(order):] + order[:r % len(order)]  # each takes each turn
                    for i in order:
                        ns, n = run_one(load, objs[i], variants[i][2], key, args.seconds)
                        if ns is not None:
                            per[i].append(ns)
                        runs[i] += n
                    bench.log(f"{prog} {key}: round {r + 1}: " +
                              ", ".join(f"{fmt(per[i][-1])}" for i in range(len(variants)) if per[i]))
                whole = statistics.median(per[0])
                out += [f"**{title}**", "",
                        "| program | ns per run | runs | against as shipped |", "|---|---|---|---|"]
                for i, (label, *_rest) in enumerate(variants):
                    m = statistics.median(per[i])
                    out.append(f"| {label} | {fmt(m)} ({fmt(min(per[i]))}–{fmt(max(per[i]))}) | {runs[i]:,} | "
                               f"{'' if i == 0 else f'{m - whole:+,.0f} ns'} |")
                out.append("")
    finally:
        stats.stdin.close()
        bench.finish(stats, 10)
    out.append(f"_{(time.time() - began) / 60:.1f} minutes._")
    text = "\n".join(out)
    print(text)
    if args.write_doc:
        with open(args.write_doc) as f:
            doc = f.read()
        a, b = "<!-- ablate:begin -->", "<!-- ablate:end -->"
        if a not in doc or b not in doc:
            raise bench.Failure(f"{args.write_doc} has no {a} ... {b} section")
        doc = doc[:doc.index(a) + len(a)] + "\n" + text + "\n" + doc[doc.index(b):]
        with open(args.write_doc, "w") as f:
            f.write(doc)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        bench.stop_all()
