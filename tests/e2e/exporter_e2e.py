#!/usr/bin/env python3
"""The built execflow_exporter binary, end to end on the real kernel (issue 2):
flags, config check, start-up errors, exact counts over HTTP, events, promtool, SIGTERM,
several listen addresses and socket activation (issue 13).

Usage: exporter_e2e.py BINARY. Needs root; a skip is a failure under CI=true.
"""
import errno
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import unittest
import urllib.error

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_lib as lib  # noqa: E402

BINARY = None
UID_BASE = 3900000000 + (os.getpid() % 10000) * 8


def run(args, **kw):
    return subprocess.run([BINARY] + args, capture_output=True, text=True, timeout=60, **kw)


def as_uid(uid, fn):
    """Runs fn() in a child that switched to uid/gid; returns its exit code."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            os._exit(0 if fn() else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def exec_true(n):
    for _ in range(n):
        if subprocess.run(["/bin/true"]).returncode != 0:
            return False
    return True


def exec_missing(n):
    for _ in range(n):
        try:
            os.execv("/nonexistent/execflow-e2e", ["x"])
        except FileNotFoundError:
            continue
        return False
    return True


def value(text, name, labels):
    return lib.sample_sum(text, name, labels or {})


class ConfigAndFlags(unittest.TestCase):
    def test_config_check_passes_and_prints_the_chosen_hooks(self):
        r = run(["--config.check", "--config.file", os.path.join(lib.REPO, "config/execflow.yaml")])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("exec: program exec_btf attached to tp_btf/sched_process_exec", r.stdout)
        self.assertIn("exec: program execve_exit_tp attached to tracepoint/syscalls/sys_exit_execve", r.stdout)

    def test_bad_config_is_one_line_naming_file_line_and_key_exit_2(self):
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write("exec:\n  enabled: true\n  max_uid: 10\n")
            f.flush()
            for extra in ([], ["--config.check"]):
                r = run(["--config.file", f.name] + extra)
                self.assertEqual(r.returncode, 2, r.stderr)
                lines = r.stderr.strip().splitlines()
                self.assertEqual(len(lines), 1, r.stderr)
                self.assertIn(f"{f.name}:3: exec.max_uid: unknown key", lines[0])
                self.assertNotIn("attached", r.stderr + r.stdout)

    def test_missing_config_file_exit_2(self):
        r = run(["--config.file", "/nonexistent/x.yaml"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("read config /nonexistent/x.yaml: No such file or directory", r.stderr)

    def test_unknown_flag_exit_2(self):
        r = run(["--web.listen", ":1"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown flag --web.listen", r.stderr)

    def test_bad_listen_address_exit_2_before_attaching(self):
        r = run(["--web.listen-address", "9741", "--config.file",
                 os.path.join(lib.REPO, "config/execflow.yaml")])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--web.listen-address '9741': expected [HOST]:PORT", r.stderr)
        self.assertNotIn("attached", r.stderr)

    def test_json_log_format(self):
        r = run(["--config.check", "--log.format=json", "--config.file",
                 os.path.join(lib.REPO, "config/execflow.yaml")])
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        self.assertTrue(lines)
        for line in lines:
            rec = json.loads(line)
            self.assertEqual(set(rec), {"ts", "level", "msg"})

    def test_not_root_says_what_is_missing(self):
        # A copy the unprivileged user can read: the clone may live in /root (0700).
        with tempfile.TemporaryDirectory() as d:
            os.chmod(d, 0o755)
            config = os.path.join(d, "execflow.yaml")
            shutil.copy(os.path.join(lib.REPO, "config/execflow.yaml"), config)
            os.chmod(config, 0o644)
            r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                "--inh-caps=-all", BINARY, "--config.check", "--config.file", config],
                               capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("run as root, or grant CAP_BPF and CAP_PERFMON", r.stderr)


def hidden(paths, argv):
    """Runs argv in a private mount namespace where each path is an empty tmpfs."""
    mounts = " && ".join(f"mount -t tmpfs none {p}" for p in paths)
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                           f'{mounts} && exec "$@"', "sh"] + argv,
                          capture_output=True, text=True, timeout=600)


class WithoutKernelFeatures(unittest.TestCase):
    """The start-up errors, and the build, on a machine that lacks what we need."""

    def test_no_btf_says_what_is_missing(self):
        r = hidden(["/sys/kernel/btf"], [BINARY, "--config.check", "--config.file",
                                         os.path.join(lib.REPO, "config/execflow.yaml")])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("kernel BTF not readable at /sys/kernel/btf/vmlinux", r.stderr)
        self.assertIn("CONFIG_DEBUG_INFO_BTF=y", r.stderr)

    def test_no_attachable_hook_says_what_is_missing(self):
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write("exec:\n  hook: tracepoint\n")
            f.flush()
            r = hidden(["/sys/kernel/tracing", "/sys/kernel/debug"],
                       [BINARY, "--config.check", "--config.file", f.name])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("no attachable hook for exec (tracepoint: attach tracepoint/sched/sched_process_exec", r.stderr)
        self.assertIn("mount -t tracefs tracefs /sys/kernel/tracing", r.stderr)

    def test_builds_without_kernel_btf(self):
        # A builder or container has no /sys/kernel/btf/vmlinux: the BPF objects
        # and skeletons must build from bpf/lib/vmlinux_min.h alone.
        with tempfile.TemporaryDirectory() as tmp:
            script = (f"cmake -S {lib.REPO} -B {tmp} -DEXECFLOW_BUILD_TESTS=OFF -DEXECFLOW_WERROR=ON >/dev/null"
                      f" && cmake --build {tmp} --target exec_skel_gen tcp_skel_gen"
                      f" && test ! -e /sys/kernel/btf/vmlinux && ls {tmp}/bpf")
            r = hidden(["/sys/kernel/btf"], ["sh", "-c", script])
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("exec.skel.h", r.stdout)
            self.assertIn("tcp.skel.h", r.stdout)


class Running(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="execflow-e2e-")
        cls.config = os.path.join(cls.tmp, "execflow.yaml")
        with open(cls.config, "w") as f:
            f.write("events:\n  keep_last: 20000\n")
        cls.proc, cls.addr = lib.start_exporter(BINARY, cls.tmp, cls.config)

    @classmethod
    def tearDownClass(cls):
        cls.proc.stop()

    def scrape(self):
        return lib.http_get(f"http://{self.addr}/metrics")

    def test_two_hundred_execs_move_the_counter_by_exactly_two_hundred(self):
        uid = UID_BASE + 1
        before = value(self.scrape(), "execflow_execs_total", {"uid": uid})
        self.assertEqual(as_uid(uid, lambda: exec_true(200)), 0)
        after = value(self.scrape(), "execflow_execs_total", {"uid": uid})
        self.assertEqual(after - before, 200)

        def events():
            evs = json.loads(lib.http_get(f"http://{self.addr}/api/v1/events"))
            mine = [e for e in evs if e["uid"] == uid]
            return mine if len(mine) >= 200 else None
        mine = lib.wait_until("200 events", events, 20)
        self.assertEqual(len(mine), 200)
        for e in mine:
            self.assertEqual(e["filename"], "/bin/true")
            self.assertEqual(e["comm"], "true")
            self.assertEqual(e["gid"], uid)
        limited = json.loads(lib.http_get(f"http://{self.addr}/api/v1/events?limit=3"))
        self.assertEqual(len(limited), 3)

    def test_fifty_missing_file_execs_count_fifty_enoent(self):
        uid = UID_BASE + 2
        self.assertEqual(as_uid(uid, lambda: exec_missing(50)), 0)
        text = self.scrape()
        self.assertEqual(value(text, "execflow_exec_failures_total", {"uid": uid, "errno": "ENOENT"}), 50)

    def test_endpoints(self):
        self.assertEqual(lib.http_get(f"http://{self.addr}/healthz"), "ok\n")
        self.assertEqual(lib.http_get(f"http://{self.addr}/readyz"), "ready\n")
        page = lib.http_get(f"http://{self.addr}/")
        self.assertIn("execflow exporter", page)
        self.assertIn('href="/metrics"', page)
        self.assertIn("exec_btf on tp_btf/sched_process_exec", page)
        with self.assertRaises(urllib.error.HTTPError) as cm:
            lib.http_get(f"http://{self.addr}/api/v1/events?limit=x")
        self.assertEqual(cm.exception.code, 400)

    def test_scrape_passes_promtool_and_has_every_core_family(self):
        text = self.scrape()
        r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout + r.stderr, "")
        for name in ["execflow_execs_total", "execflow_exec_failures_total",
                     "execflow_exec_events_total", "execflow_exec_events_dropped_total",
                     "execflow_build_info", "execflow_bpf_program_info",
                     "execflow_bpf_program_run_seconds_total", "execflow_bpf_program_runs_total",
                     "execflow_bpf_program_misses_total",
                     "execflow_bpf_map_entries", "execflow_bpf_map_capacity",
                     "execflow_bpf_map_update_failures_total", "execflow_scrape_duration_seconds"]:
            self.assertIn(f"# TYPE {name} ", text)
        self.assertEqual(value(text, "execflow_bpf_program_info",
                               {"program": "exec_btf", "hook": "sched_process_exec",
                                "attach_type": "tp_btf"}), 1)


def connect_many(port, n, payload, read_reply=False):
    """n loopback connections to port, one at a time: each sends payload (and reads
    the reply to its end when asked), then closes."""
    for _ in range(n):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            c.sendall(payload)
            if read_reply:
                c.shutdown(socket.SHUT_WR)
                while c.recv(65536):
                    pass


class Sink:
    """A loopback server that reads every connection to its end."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.received = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                while True:
                    b = c.recv(65536)
                    if not b:
                        break
                    with self.lock:
                        self.received += len(b)


class Series(unittest.TestCase):
    """Who may add TCP series: connections from a client, refused or not."""

    CONNECTIONS = 3000  # issue 18: 3,000 connections from one client
    REQUEST = b"GET /nothing-here HTTP/1.0\r\n\r\n"

    def run_exporter(self, config_text):
        tmp = tempfile.mkdtemp(prefix="execflow-e2e-")
        self.addCleanup(shutil.rmtree, tmp, True)
        config = os.path.join(tmp, "execflow.yaml")
        with open(config, "w") as f:
            f.write(config_text)
        proc, addr = lib.start_exporter(BINARY, tmp, config)
        self.addCleanup(proc.stop)
        return addr

    def tcp_samples(self, text):
        return [(name, labels, v) for name, labels, v in lib.scrape_values(text)
                if name in ("execflow_tcp_sent_bytes_total", "execflow_tcp_received_bytes_total")]

    def test_per_flow_labels_connections_the_exporter_accepts_are_no_flows(self):
        addr = self.run_exporter("exec:\n  enabled: false\n")  # the binary's per-flow labels
        port = int(addr.rsplit(":", 1)[1])
        connect_many(port, self.CONNECTIONS, self.REQUEST, read_reply=True)
        accepted = [(n, l) for n, l, _ in self.tcp_samples(lib.http_get(f"http://{addr}/metrics"))
                    if l.get("sport") == str(port)]
        self.assertEqual(accepted, [])

    def test_edge_labels_three_hundred_clients_are_one_series_per_port_and_direction(self):
        with open(os.path.join(lib.REPO, "config", "execflow.yaml"), encoding="utf-8") as f:
            text = f.read()
        text = text.replace("pin_path: /sys/fs/bpf/execflow", "pin_path: off")
        addr = self.run_exporter(text.replace("state_file: /run/execflow/state.json", "state_file: off"))
        port = int(addr.rsplit(":", 1)[1])
        sink = Sink()
        connect_many(sink.port, self.CONNECTIONS, b"x" * 10)
        connect_many(port, self.CONNECTIONS, self.REQUEST, read_reply=True)
        lib.wait_until("the sink's bytes", lambda: sink.received == 10 * self.CONNECTIONS, 60)
        samples = self.tcp_samples(lib.http_get(f"http://{addr}/metrics"))
        to_sink = sorted((n, l["direction"], v) for n, l, v in samples if l.get("port") == str(sink.port))
        self.assertEqual(to_sink, [("execflow_tcp_received_bytes_total", "in", 10.0 * self.CONNECTIONS),
                                   ("execflow_tcp_sent_bytes_total", "out", 10.0 * self.CONNECTIONS)])
        to_exporter = sorted((n, l["direction"]) for n, l, _ in samples if l.get("port") == str(port))
        # This node's clients of the exporter are one edge; the exporter's own ends are none.
        self.assertEqual(to_exporter, [("execflow_tcp_received_bytes_total", "out"),
                                       ("execflow_tcp_sent_bytes_total", "out")])


def unescape(v):
    """A label value as the text exposition escapes it, read back."""
    return re.sub(r'\\(.)', lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), v)


class HostileNames(unittest.TestCase):
    """Kubelet folder names hold whatever bytes a file name may: Prometheus refuses a whole
    scrape over one label value that is not UTF-8, so the node's metrics would vanish."""

    def test_invalid_utf8_and_control_bytes_in_kubelet_names_pass_promtool(self):
        tmp = tempfile.mkdtemp(prefix="execflow-e2e-")
        self.addCleanup(shutil.rmtree, tmp, True)
        pod_uid = "0a1b2c3d-0000-4000-8000-%012x" % os.getpid()
        cid = "%064x" % (0xe2e << 32 | os.getpid())
        # The kubelet's cgroupfs layout from the hierarchy's root, under a name of this test's own.
        top = os.path.join(lib.cgroup2_root(), f"kubepods-e2e{os.getpid()}")
        cgroup = os.path.join(top, f"pod{pod_uid}", cid)
        os.makedirs(cgroup)
        for d in (top, os.path.dirname(cgroup), cgroup):  # cleanups run last first
            self.addCleanup(os.rmdir, d)
        logs = os.path.join(tmp, "kubelet")
        os.makedirs(os.path.join(logs, "containers"))
        os.makedirs(os.path.join(logs, "pods"))
        pod, ns, container = b'we\xffb"x\\y{z}\n', b"sh\x01op", b"ng\x7finx\xc3"
        open(os.path.join(logs.encode(), b"containers",
                          pod + b"_" + ns + b"_" + container + b"-" + cid.encode() + b".log"), "w").close()
        config = os.path.join(tmp, "execflow.yaml")
        with open(config, "w") as f:
            f.write(f"exec:\n  labels: [uid, namespace, pod, container]\ntcp:\n  enabled: false\n"
                    f"workloads:\n  kubelet_log_dir: {logs}\nbpf:\n  pin_path: off\n  state_file: off\n")
        proc, addr = lib.start_exporter(BINARY, tmp, config)
        self.addCleanup(proc.stop)
        uid = UID_BASE + 5

        def in_cgroup():
            with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
            return as_uid(uid, lambda: exec_true(7)) == 0
        pid = os.fork()
        if pid == 0:
            os._exit(0 if in_cgroup() else 1)
        self.assertEqual(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), 0)

        text = lib.http_get(f"http://{addr}/metrics")
        r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        want = {"namespace": "sh\ufffdop", "pod": 'we\ufffdb"x\\y{z}\ufffd', "container": "ng\ufffdinx\ufffd"}
        got = [(({k: unescape(v) for k, v in l.items()}), v) for n, l, v in lib.scrape_values(text)
               if n == "execflow_execs_total" and l.get("uid") == str(uid)]
        self.assertEqual(got, [({"uid": str(uid), **want}, 7.0)])

        def events():
            evs = [e for e in json.loads(lib.http_get(f"http://{addr}/api/v1/events")) if e["uid"] == uid]
            return evs if len(evs) >= 7 else None
        evs = lib.wait_until("7 exec events", events, 20)
        self.assertEqual([(e["namespace"], e["pod"], e["container"]) for e in evs],
                         [(want["namespace"], want["pod"], want["container"])] * 7)


class Options(unittest.TestCase):
    """Settings that change what the running exporter does."""

    def start(self, tmp, config_text):
        config = os.path.join(tmp, "execflow.yaml")
        with open(config, "w") as f:
            f.write(config_text)
        p, addr = lib.start_exporter(BINARY, tmp, config)
        self.addCleanup(p.stop)
        return p, addr

    def test_events_file_output_writes_one_json_line_per_exec(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "events.jsonl")
            self.start(tmp, f"events:\n  output: file\n  file:\n    path: {path}\n")
            uid = UID_BASE + 3
            self.assertEqual(as_uid(uid, lambda: exec_true(25)), 0)

            def mine():
                with open(path) as f:
                    recs = [json.loads(line) for line in f if line.strip()]
                got = [r for r in recs if r["uid"] == uid]
                return got if len(got) >= 25 else None
            got = lib.wait_until("25 event lines", mine, 20)
            self.assertEqual(len(got), 25)
            self.assertTrue(all(r["filename"] == "/bin/true" for r in got))

    def test_events_carry_each_argument_exactly_and_a_long_command_line_cut_and_flagged(self):
        # Spaces, quotes, empty strings, invalid UTF-8 (U+FFFD in JSON) and control bytes;
        # secrets the bundled redaction rules hide.
        argv = [b"/bin/true", b"two words", b"", b"it's \"q\"", b"bad \xff\xfe", b"tab\tnl\n", b"",
                b"--password=hunter2", b"--token", b"s3cr3t", b"https://bob:pw@example.com/x"]
        want = [a.decode("utf-8", "replace") for a in argv[:7]] + [
            "--password=*****", "--token", "*****", "https://bob:*****@example.com/x"]
        long_argv = [b"/bin/true", b"a" * (100 * 1024), b"b" * (100 * 1024)]
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "events.jsonl")
            _, addr = self.start(tmp, f"events:\n  args_max_bytes: 1000\n  output: file\n  file:\n    path: {path}\n")
            uid = UID_BASE + 6

            def run():
                return all(subprocess.run(a).returncode == 0 for a in (argv, long_argv))
            self.assertEqual(as_uid(uid, run), 0)

            served, written = self.events_of(uid, addr, path, 2)
            for got in (served, written):
                self.assertEqual(len(got), 2)
                self.assertEqual(got[0]["args"], want)
                self.assertEqual(got[0]["args_bytes"], sum(len(a) + 1 for a in argv))
                self.assertFalse(got[0]["args_truncated"])
                self.assertEqual(got[1]["args"], ["/bin/true", "a" * (1000 - 10)])
                self.assertEqual(got[1]["args_bytes"], 10 + 2 * (100 * 1024 + 1))
                self.assertTrue(got[1]["args_truncated"])
                self.assertEqual([e["errno"] for e in got], [None, None])

    def events_of(self, uid, addr, path, n):
        """The first n events of uid, as /api/v1/events serves them and as the file has them."""
        def mine(events):
            got = [e for e in events if e["uid"] == uid]
            return got if len(got) >= n else None
        served = lib.wait_until(f"{n} events", lambda: mine(json.loads(lib.http_get(f"http://{addr}/api/v1/events"))), 20)

        def lines():
            with open(path, encoding="utf-8") as f:
                return mine([json.loads(line) for line in f if line.strip()])
        return served, lib.wait_until(f"{n} event lines", lines, 20)

    def test_a_failed_exec_is_an_event_with_its_errno_file_and_redacted_arguments(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "events.jsonl")
            _, addr = self.start(tmp, f"events:\n  output: file\n  file:\n    path: {path}\n")
            uid = UID_BASE + 8
            missing, plain = os.path.join(tmp, "missing"), os.path.join(tmp, "plain")
            with open(plain, "w") as f:
                f.write("not a program\n")
            os.chmod(tmp, 0o755)  # the uid below reaches plain, which is not executable
            argv = ["prog", "two words", "", "--api-key=k3y"]

            def attempts():
                errs = []
                for p in (missing, plain):
                    try:
                        os.execv(p, argv)
                    except OSError as e:
                        errs.append(e.errno)
                return errs == [errno.ENOENT, errno.EACCES]
            self.assertEqual(as_uid(uid, attempts), 0)

            served, written = self.events_of(uid, addr, path, 2)
            for got in (served, written):
                self.assertEqual([(e["errno"], e["filename"]) for e in got], [("ENOENT", missing), ("EACCES", plain)])
                for e in got:
                    self.assertEqual(e["args"], ["prog", "two words", "", "--api-key=*****"])
                    self.assertEqual(e["args_bytes"], sum(len(a) + 1 for a in argv))
                    self.assertFalse(e["args_truncated"])

    def test_a_poller_with_after_gets_every_event_or_the_exact_count_it_missed(self):
        with tempfile.TemporaryDirectory() as tmp:
            _, addr = self.start(tmp, "events:\n  keep_last: 20\n")
            uid = UID_BASE + 7

            def poll(after, limit=None):
                q = f"after={after}" + (f"&limit={limit}" if limit is not None else "")
                j = json.loads(lib.http_get(f"http://{addr}/api/v1/events?{q}"))
                seqs = [e["seq"] for e in j["events"]]
                # What is given and what is lost add up to what came, in order.
                self.assertEqual(seqs, sorted(set(seqs)))
                self.assertEqual(j["lost"], j["evicted"] + j["dropped"])
                if seqs:
                    self.assertEqual(seqs[0], after + j["lost"] + 1)
                    self.assertEqual(j["next"], seqs[-1])
                self.assertFalse(j["reset"])
                return j

            # Polled after every 5 execs (this machine's own execs come too): every one seen.
            seen, after = [], poll(0)["next"]
            for _ in range(5):
                self.assertEqual(as_uid(uid, lambda: exec_true(5)), 0)
                j = lib.wait_until("5 more events", lambda: (
                    lambda j: j if len([e for e in j["events"] if e["uid"] == uid]) >= 5 else None)(poll(after)), 20)
                self.assertEqual(j["lost"], 0)
                seen += [e for e in j["events"] if e["uid"] == uid]
                after = j["next"]
            self.assertEqual(len(seen), 25)
            # 60 execs unpolled, 20 kept: at least 40 are evicted, and said so.
            self.assertEqual(as_uid(uid, lambda: exec_true(60)), 0)
            j = lib.wait_until("the 60th event", lambda: (
                lambda j: j if j["next"] - after >= 60 else None)(poll(after)), 20)
            self.assertGreaterEqual(j["evicted"], 40)
            self.assertEqual(len(j["events"]), 20)
            self.assertEqual(j["next"] - after, j["lost"] + 20)
            # Paged: one at a time from the oldest kept (poll checks it follows what is lost).
            self.assertEqual(len(poll(after, limit=1)["events"]), 1)
            # A poller of an exporter that restarted since: from the start, said so.
            r = json.loads(lib.http_get(f"http://{addr}/api/v1/events?after={j['next'] + 10**9}"))
            self.assertTrue(r["reset"])
            with self.assertRaises(urllib.error.HTTPError) as e:
                lib.http_get(f"http://{addr}/api/v1/events?after=-1")
            self.assertEqual(e.exception.code, 400)

    def test_events_stdout_output(self):
        with tempfile.TemporaryDirectory() as tmp:
            p, _ = self.start(tmp, "events:\n  output: stdout\n")
            uid = UID_BASE + 4
            self.assertEqual(as_uid(uid, lambda: exec_true(3)), 0)

            def lines():
                out = [l for l in p.tail(100000).splitlines() if l.startswith("{")]
                got = [json.loads(l) for l in out if json.loads(l).get("uid") == uid]
                return got if len(got) >= 3 else None
            self.assertEqual(len(lib.wait_until("3 stdout events", lines, 20)), 3)

    def test_run_time_stats_count_program_runs(self):
        with tempfile.TemporaryDirectory() as tmp:
            _, addr = self.start(tmp, "bpf:\n  run_time_stats: true\n")
            self.assertEqual(as_uid(UID_BASE + 5, lambda: exec_true(100)), 0)
            text = lib.http_get(f"http://{addr}/metrics")
            self.assertGreaterEqual(value(text, "execflow_bpf_program_runs_total", {"program": "exec_btf"}), 100)
            self.assertGreater(value(text, "execflow_bpf_program_run_seconds_total", {"program": "exec_btf"}), 0)

    def test_events_disabled_serves_no_events(self):
        with tempfile.TemporaryDirectory() as tmp:
            _, addr = self.start(tmp, "events:\n  enabled: false\n")
            self.assertEqual(as_uid(UID_BASE + 6, lambda: exec_true(3)), 0)
            self.assertEqual(json.loads(lib.http_get(f"http://{addr}/api/v1/events")), [])
            text = lib.http_get(f"http://{addr}/metrics")
            self.assertEqual(value(text, "execflow_execs_total", {"uid": UID_BASE + 6}), 3)


class WebConfig(unittest.TestCase):
    """--web.config.file: bcrypt basic auth, as Prometheus' exporter-toolkit spells it
    (TLS: hardening_e2e.py)."""

    def test_basic_auth_guards_metrics_and_events_but_not_probes(self):
        import base64
        import urllib.request
        with tempfile.TemporaryDirectory() as tmp:
            web = os.path.join(tmp, "web.yml")
            with open(web, "w") as f:
                f.write(f"basic_auth_users:\n  prometheus: '{lib.bcrypt('s3cret', 4)}'\n")
            p, addr = lib.start_exporter(BINARY, tmp, extra_args=[f"--web.config.file={web}"])
            self.addCleanup(p.stop)

            def get(path, user=None):
                req = urllib.request.Request(f"http://{addr}{path}")
                if user:
                    req.add_header("Authorization", "Basic " + base64.b64encode(user.encode()).decode())
                with urllib.request.urlopen(req, timeout=5) as r:
                    return r.read().decode()
            self.assertIn("execflow_execs_total", get("/metrics", "prometheus:s3cret"))
            self.assertEqual(get("/healthz"), "ok\n")
            for path, user in (("/metrics", None), ("/metrics", "prometheus:wrong"),
                               ("/metrics", "mallory:s3cret"), ("/api/v1/events", None), ("/", None)):
                with self.assertRaises(urllib.error.HTTPError) as cm:
                    get(path, user)
                self.assertEqual(cm.exception.code, 401, (path, user))

    def test_bad_web_config_exit_2_before_attaching(self):
        with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
            f.write("basic_auth_users:\n  alice: plaintext\n")
            f.flush()
            r = run(["--config.file", os.path.join(lib.REPO, "config/execflow.yaml"),
                     f"--web.config.file={f.name}"])
            self.assertEqual(r.returncode, 2)
            self.assertIn(f"{f.name}:2: basic_auth_users: user 'alice': expected a bcrypt hash", r.stderr)
            self.assertNotIn("plaintext", r.stderr)
            self.assertNotIn("attached", r.stderr)


class Lifecycle(unittest.TestCase):
    def test_sigterm_exits_zero_promptly(self):
        with tempfile.TemporaryDirectory() as tmp:
            p, addr = lib.start_exporter(BINARY, tmp)
            self.addCleanup(p.stop)
            lib.http_get(f"http://{addr}/metrics")
            p.proc.terminate()
            # The contract is "exit 0 within 2 seconds"; it takes ~0.2 s here.
            self.assertEqual(p.proc.wait(timeout=2), 0)
            self.assertIn("stopped", p.tail())

    def test_port_in_use_is_a_clear_start_up_error(self):
        with tempfile.TemporaryDirectory() as tmp:
            p, addr = lib.start_exporter(BINARY, tmp)
            self.addCleanup(p.stop)
            r = run(["--config.file", os.path.join(lib.REPO, "config/execflow.yaml"),
                     f"--web.listen-address={addr}"])
            self.assertEqual(r.returncode, 1)
            self.assertIn(f"listen on {addr}: the port is in use; choose another with --web.listen-address", r.stderr)
            self.assertNotIn("attached", r.stderr)


def comm(pid):
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()


def thread_capabilities(pid):
    """The union of CapEff over every thread of pid."""
    caps = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    caps |= int(line.split()[1], 16)
    return caps


def free_privileged_port():
    """A port below 1024 nothing listens on (on 127.0.0.1)."""
    import socket
    for port in range(1023, 899, -1):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port from 900 to 1023 on 127.0.0.1")


CAP_NET_BIND_SERVICE = 10


class Listeners(unittest.TestCase):
    """--web.listen-address repeated, --web.systemd-socket (issue 13)."""

    CONFIG = os.path.join(lib.REPO, "config/execflow.yaml")

    def count_execs(self, urls, uid, n):
        """n execs under uid move execflow_execs_total{uid} by exactly n at every url."""
        before = [value(lib.http_get(f"{u}/metrics"), "execflow_execs_total", {"uid": uid}) for u in urls]
        self.assertEqual(as_uid(uid, lambda: exec_true(n)), 0)
        after = [value(lib.http_get(f"{u}/metrics"), "execflow_execs_total", {"uid": uid}) for u in urls]
        self.assertEqual([a - b for a, b in zip(after, before)], [n] * len(urls))

    def test_every_listen_address_serves(self):
        # Two hosts (all of 127/8 is loopback); not IPv6: Debian 12's civetweb has none.
        p1, p2 = lib.free_port(), lib.free_port()
        urls = [f"http://127.0.0.1:{p1}", f"http://127.0.0.2:{p2}"]
        with tempfile.TemporaryDirectory() as tmp:
            p = lib.Process("exporter", [BINARY, f"--config.file={self.CONFIG}",
                                         f"--web.listen-address=127.0.0.1:{p1}",
                                         f"--web.listen-address=127.0.0.2:{p2}"], tmp)
            self.addCleanup(p.stop)
            for u in urls:
                lib.wait_until(f"{u}/readyz", lambda: p.check_running() and lib.http_get(f"{u}/readyz") == "ready\n", 30)
            self.assertIn(f"listening on 127.0.0.1:{p1},127.0.0.2:{p2} systemd_socket=false", p.tail())
            self.count_execs(urls, UID_BASE + 3, 30)
            for u in urls:
                self.assertEqual(lib.http_get(f"{u}/healthz"), "ok\n")
            p.proc.terminate()
            self.assertEqual(p.proc.wait(timeout=2), 0)

    def test_overlapping_addresses_are_a_start_up_error(self):
        port = lib.free_port()
        r = run([f"--config.file={self.CONFIG}", f"--web.listen-address=:{port}",
                 f"--web.listen-address=127.0.0.1:{port}"])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(f"listen on 127.0.0.1:{port}: overlaps --web.listen-address :{port} (same port)", r.stderr)
        self.assertNotIn("attached", r.stderr)

    def test_systemd_socket_flag_errors(self):
        r = run([f"--config.file={self.CONFIG}", "--web.systemd-socket", "--web.listen-address=:9741"])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--web.listen-address and --web.systemd-socket are mutually exclusive", r.stderr)
        self.assertNotIn("attached", r.stderr)
        env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
        r = run([f"--config.file={self.CONFIG}", "--web.systemd-socket"], env=env)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("--web.systemd-socket: systemd passed no sockets (LISTEN_FDS is not set)", r.stderr)
        self.assertNotIn("attached", r.stderr)

    def test_socket_activation_first_connection_starts_it(self):
        """systemd-socket-activate holds the sockets as systemd would and execs the exporter
        (same pid: LISTEN_PID) when the first client connects. One port is privileged: the
        exporter serves it without CAP_NET_BIND_SERVICE, which it never had."""
        activate = lib.need_tool("systemd-socket-activate", "systemd")
        port, privileged = lib.free_port(), free_privileged_port()
        urls = [f"http://127.0.0.1:{port}", f"http://127.0.0.1:{privileged}"]
        with tempfile.TemporaryDirectory() as tmp:
            p = lib.Process("activate", [activate, f"--listen=127.0.0.1:{port}",
                                         f"--listen=127.0.0.1:{privileged}", BINARY,
                                         f"--config.file={self.CONFIG}", "--web.systemd-socket"], tmp)
            self.addCleanup(p.stop)
            lib.wait_until("both sockets", lambda: p.tail().count("Listening on") == 2, 10)
            time.sleep(0.5)
            self.assertEqual(comm(p.proc.pid), "systemd-socket-")  # nothing started yet
            # The first request starts the exporter and is answered by it.
            self.assertEqual(lib.http_get(f"{urls[1]}/readyz", timeout=60), "ready\n")
            self.assertEqual(comm(p.proc.pid), "execflow_export")
            self.assertIn(f"listening on 127.0.0.1:{port},127.0.0.1:{privileged} systemd_socket=true",
                          p.tail())
            self.assertEqual(thread_capabilities(p.proc.pid) & (1 << CAP_NET_BIND_SERVICE), 0)
            self.count_execs(urls, UID_BASE + 4, 25)
            p.proc.terminate()
            self.assertEqual(p.proc.wait(timeout=2), 0)
            self.assertIn("stopped", p.tail())


if __name__ == "__main__":
    lib.stop_on_sigterm()
    BINARY = lib.exporter_binary(sys.argv)
    lib.need_tool("promtool")
    unittest.main(argv=[sys.argv[0], "-v"] + sys.argv[2:])  # then test names, if any
