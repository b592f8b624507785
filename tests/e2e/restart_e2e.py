#!/usr/bin/env python3
"""Restarts lose nothing (issue 13): the BPF state pinned under bpf.pin_path keeps counting
while no exporter runs, and the next exporter adopts it.

Each test pins in a bpf filesystem of its own (mounted on a temporary folder, unmounted at
the end), so nothing is left on the machine's /sys/fs/bpf.

Usage: restart_e2e.py BINARY. Needs root; a skip is a failure under CI=true.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_lib as lib  # noqa: E402

BINARY = None
UID_BASE = 3910000000 + (os.getpid() % 10000) * 8


def as_uid(uid, n):
    """n execs of /bin/true by a child running as uid; returns its exit code."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            ok = all(subprocess.run(["/bin/true"]).returncode == 0 for _ in range(n))
            os._exit(0 if ok else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


class Flow:
    """A loopback TCP connection; the client's sends are the flow counted."""

    def __init__(self):
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(1)
        self.client = socket.create_connection(self.server.getsockname())
        self.peer, _ = self.server.accept()
        self.received = 0
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.labels = {"saddr": "127.0.0.1", "sport": str(self.client.getsockname()[1]),
                       "daddr": "127.0.0.1", "dport": str(self.server.getsockname()[1])}

    def _read(self):
        while True:
            b = self.peer.recv(1 << 16)
            if not b:
                return
            self.received += len(b)

    def send(self, n):
        self.client.sendall(b"x" * n)

    def close(self):
        self.client.close()
        self.reader.join(timeout=10)
        self.peer.close()
        self.server.close()


def flow_key(sock):
    """The kernel's tcp_flow_key of a connected IPv4 socket (bpf/tcp.h), as hex."""
    import struct
    (saddr, sport), (daddr, dport) = sock.getsockname(), sock.getpeername()
    rel = next(line[3:].strip() for line in open("/proc/self/cgroup") if line.startswith("0::"))
    cgroup_id = os.stat(lib.cgroup2_root() + rel).st_ino
    netns = os.stat("/proc/self/ns/net").st_ino
    return struct.pack("<16s16sHHHHIIQ", socket.inet_aton(saddr), socket.inet_aton(daddr), sport, dport,
                       socket.AF_INET, 0, netns, 0, cgroup_id).hex()


class Restart(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="execflow-restart-")
        self.bpffs = os.path.join(self.tmp, "bpffs")
        os.mkdir(self.bpffs)
        r = subprocess.run(["mount", "-t", "bpf", "bpf", self.bpffs], capture_output=True, text=True)
        if r.returncode != 0:
            lib.skip_or_fail(f"cannot mount a bpf filesystem: {r.stderr.strip()}")
        self.addCleanup(self.unmount)
        self.pin = os.path.join(self.bpffs, "execflow")
        self.state = os.path.join(self.tmp, "run", "state.json")
        self.config = self.write_config("")
        self.procs = []

    def unmount(self):
        for p in self.procs:
            if p.proc.poll() is None:
                p.proc.kill()
                p.proc.wait()
        subprocess.run(["umount", self.bpffs], check=False)
        subprocess.run(["rm", "-rf", self.tmp], check=False)

    def write_config(self, extra, name="execflow.yaml"):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            # Closed flows retained 1 s, so the test sees one removed.
            f.write(f"bpf:\n  pin_path: {self.pin}\n  state_file: {self.state}\n"
                    f"tcp:\n  closed_flow_retention: 1s\n{extra}")
        return path

    def nosport_config(self):
        """Series without sport (many flows to one server port share one), kept 5 minutes."""
        path = os.path.join(self.tmp, "nosport.yaml")
        with open(path, "w") as f:
            f.write(f"bpf:\n  pin_path: {self.pin}\n  state_file: {self.state}\n"
                    "tcp:\n  closed_flow_retention: 5m\n  labels: [saddr, daddr, dport]\n")
        return path

    def start(self, config=None):
        workdir = tempfile.mkdtemp(dir=self.tmp)
        p, addr = lib.start_exporter(BINARY, workdir, config or self.config)
        self.procs.append(p)
        return p, addr

    @staticmethod
    def scrape(addr):
        return lib.http_get(f"http://{addr}/metrics")

    @staticmethod
    def value(text, name, labels):
        return lib.sample_sum(text, name, labels)

    @staticmethod
    def events(addr, uid, n):
        """The exec events of uid the exporter served, once there are at least n."""
        mine = [e for e in json.loads(lib.http_get(f"http://{addr}/api/v1/events")) if e["uid"] == uid]
        return mine if len(mine) >= n else None

    def kill9(self, p):
        p.proc.send_signal(signal.SIGKILL)
        p.proc.wait(timeout=10)

    def test_kill_9_and_restart_lose_no_exec_and_no_byte(self):
        uid = UID_BASE + 1
        open_flow, closing_flow = Flow(), Flow()
        p, addr = self.start()
        first = self.scrape(addr)
        self.assertEqual(self.value(first, "execflow_bpf_state_pinned", {"collector": "exec"}), 1)
        self.assertEqual(self.value(first, "execflow_bpf_state_adopted", {"collector": "exec"}), 0)
        self.assertIn(f"exec: BPF state pinned in {self.pin}/exec", p.tail(100))

        self.assertEqual(as_uid(uid, 100), 0)
        open_flow.send(1_000_000)
        closing_flow.send(300_000)
        text = self.scrape(addr)
        self.assertEqual(self.value(text, "execflow_execs_total", {"uid": str(uid)}), 100)
        self.assertEqual(self.value(text, "execflow_tcp_sent_bytes_total", open_flow.labels), 1_000_000)
        # Every event of the first 100 delivered (those still in the ring buffer at a
        # kill would be delivered by the next process).
        self.assertEqual(len(lib.wait_until("100 exec events", lambda: self.events(addr, uid, 100), 20)), 100)
        self.kill9(p)

        # Nothing runs: the pinned programs go on counting.
        self.assertEqual(as_uid(uid, 50), 0)
        open_flow.send(500_000)
        closing_flow.send(200_000)
        closing_flow.close()

        p, addr = self.start()
        self.assertIn(f"exec: adopted the BPF state pinned in {self.pin}/exec", p.tail(100))
        self.assertIn(f"tcp: adopted the BPF state pinned in {self.pin}/tcp", p.tail(100))
        text = self.scrape(addr)
        scrapes = [text]
        for c in ("exec", "tcp"):
            self.assertEqual(self.value(text, "execflow_bpf_state_adopted", {"collector": c}), 1)
            self.assertEqual(self.value(text, "execflow_bpf_state_pinned", {"collector": c}), 1)
        self.assertEqual(self.value(text, "execflow_execs_total", {"uid": str(uid)}), 150)
        self.assertEqual(as_uid(uid, 50), 0)
        open_flow.send(250_000)
        text = self.scrape(addr)
        scrapes.append(text)
        self.assertEqual(self.value(text, "execflow_execs_total", {"uid": str(uid)}), 200)
        self.assertEqual(self.value(text, "execflow_tcp_sent_bytes_total", open_flow.labels), 1_750_000)

        # The 50 exec events of the down time waited in the pinned ring buffer.
        self.assertEqual(len(lib.wait_until("100 exec events", lambda: self.events(addr, uid, 100), 20)), 100)

        # The flow that closed while nothing ran: its final total, exported from the first
        # scrape on, then it is gone (after tcp.closed_flow_retention).
        def closing_flow_value(t):
            values = [v for n, labels, v in lib.scrape_values(t) if n == "execflow_tcp_sent_bytes_total"
                      and all(labels.get(k) == x for k, x in closing_flow.labels.items())]
            return values[0] if values else None

        def gone():
            scrapes.append(self.scrape(addr))
            return closing_flow_value(scrapes[-1]) is None
        lib.wait_until("closed flow removed", gone, 20)
        self.assertEqual(closing_flow_value(scrapes[0]), 500_000)
        seen = [closing_flow_value(t) for t in scrapes]
        present = seen.index(None)
        self.assertEqual(seen, [500_000] * present + [None] * (len(seen) - present))
        self.assertGreaterEqual(self.value(scrapes[-1], "execflow_tcp_flows_closed_total", {}), 1)
        open_flow.close()
        self.assertEqual(p.stop(), 0)

    def test_series_of_closed_flows_never_decrease_across_kill_9(self):
        """Without sport, short connections to one server port share a series whose bytes
        user space took out of the kernel map at each close: bpf.state_file carries them
        over a kill -9, so the series goes on from where it was, exact to the byte."""
        config = self.nosport_config()
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        self.addCleanup(server.close)
        labels = {"saddr": "127.0.0.1", "daddr": "127.0.0.1", "dport": str(server.getsockname()[1])}

        def connections(sizes):
            for n in sizes:
                client = socket.create_connection(server.getsockname())
                peer, _ = server.accept()
                client.sendall(b"x" * n)
                client.close()
                got = 0
                while True:
                    b = peer.recv(1 << 16)
                    if not b:
                        break
                    got += len(b)
                peer.close()
                self.assertEqual(got, n)

        def series(addr, want):
            def value():
                v = self.value(self.scrape(addr), "execflow_tcp_sent_bytes_total", labels)
                return v if v == want else None
            return lib.wait_until(f"series at {want}", value, 20)

        p, addr = self.start(config)
        first = [1000 * (i + 1) + i for i in range(5)]
        connections(first)
        v = series(addr, sum(first))

        def saved(want):
            """This series' entries in the state file, once a scrape saved the closes."""
            self.scrape(addr)
            with open(self.state) as f:
                tcp = json.load(f)["tables"]["tcp_sent"]
            self.assertEqual(tcp["label_names"], ["saddr", "daddr", "dport"])
            mine = [(s["retired"], s["live"]) for s in tcp["series"]
                    if dict(zip(tcp["label_names"], s["labels"])) == labels]
            return mine if mine == [(want, False)] else None
        # The closes are taken out of the kernel map (the close notices come after the
        # FIN handshake): all of the series is in user space now, and saved.
        lib.wait_until("closed flows saved", lambda: saved(v), 20)
        self.assertEqual(self.value(self.scrape(addr), "execflow_tcp_sent_bytes_total", labels), v)
        self.assertEqual(os.stat(self.state).st_mode & 0o7777, 0o600)
        self.assertEqual(os.stat(os.path.dirname(self.state)).st_mode & 0o7777, 0o700)
        self.kill9(p)

        p, addr = self.start(config)
        log = p.tail(100)
        self.assertIn("tcp: adopted the BPF state pinned", log)
        after = self.value(self.scrape(addr), "execflow_tcp_sent_bytes_total", labels)
        self.assertGreaterEqual(after, v)
        self.assertEqual(after, v)
        self.assertRegex(log, r"tcp: \d+ series of tcp_sent seeded from the state file")
        more = [777, 70_001, 5]
        connections(more)
        series(addr, v + sum(more))
        lib.wait_until("closed flows saved", lambda: saved(v + sum(more)), 20)
        self.kill9(p)

        # A damaged file: the exporter cannot tell it wrote it, so it neither reads nor
        # replaces it: one warning naming it, a start without a state file, never a crash.
        damaged = '{"format": 2, "tables": {'
        with open(self.state, "w") as f:
            f.write(damaged)
        p, addr = self.start(config)
        self.assertIn(f"state file {self.state}: not used: {self.state} is not a state file or journal this "
                      "exporter wrote", p.tail(100))
        self.assertEqual(self.value(self.scrape(addr), "execflow_tcp_sent_bytes_total", labels), 0)
        self.assertEqual(p.stop(), 0)
        with open(self.state) as f:
            self.assertEqual(f.read(), damaged, "left as it was")
        os.unlink(self.state)
        p, addr = self.start(config)  # writes a state file again
        self.assertEqual(p.stop(), 0)

        # State replaced (another layout): the saved totals are not added to fresh counts.
        other = os.path.join(self.tmp, "other.yaml")
        with open(other, "w") as f:
            f.write(f"bpf:\n  pin_path: {self.pin}\n  state_file: {self.state}\n"
                    "tcp:\n  max_flows: 4096\n  labels: [saddr, daddr, dport]\n")
        p, addr = self.start(other)
        self.assertIn(f"state file {self.state}: tcp's saved totals ignored: its BPF state was replaced",
                      p.tail(100))
        self.assertEqual(self.value(self.scrape(addr), "execflow_bpf_state_adopted", {"collector": "tcp"}), 0)
        self.assertEqual(p.stop(), 0)

    def test_a_flow_closed_after_the_last_save_survives_kill_9(self):
        """A flow that closes after the last scrape leaves the kernel map at once; its final
        total is in the journal beside bpf.state_file until the next scrape saves it, so a
        kill -9 in between loses none of it."""
        config = self.nosport_config()
        journal = self.state + ".tcp.journal"
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        self.addCleanup(server.close)
        labels = {"saddr": "127.0.0.1", "daddr": "127.0.0.1", "dport": str(server.getsockname()[1])}
        p, addr = self.start(config)
        kept, closing = socket.create_connection(server.getsockname()), socket.create_connection(server.getsockname())
        peers = [server.accept()[0], server.accept()[0]]
        self.addCleanup(lambda: [s.close() for s in peers + [kept]])
        received = [0, 0]

        def drain(i):
            while True:
                b = peers[i].recv(1 << 16)
                if not b:
                    return
                received[i] += len(b)
        readers = [threading.Thread(target=drain, args=(i,), daemon=True) for i in (0, 1)]
        for r in readers:
            r.start()
        kept.sendall(b"x" * 40_000)
        closing.sendall(b"x" * 30_000)
        lib.wait_until("both sends counted", lambda: self.value(self.scrape(addr), "execflow_tcp_sent_bytes_total",
                                                                labels) == 70_000 or None, 20)
        with open(self.state) as f:
            saved = [s for s in json.load(f)["tables"]["tcp_sent"]["series"] if s["labels"] == list(labels.values())]
        self.assertEqual(saved, [{"labels": list(labels.values()), "retired": 0, "live": True}])

        # No scrape from here on: the close is taken out of the kernel map and journaled only.
        peer_labels = {"saddr": "127.0.0.1", "daddr": "127.0.0.1", "dport": str(closing.getsockname()[1])}
        closing.sendall(b"x" * 5_000)
        closing.close()
        readers[1].join(timeout=10)
        self.assertEqual(received[1], 35_000)
        peers[1].close()

        # Both ends closed: the client's flow (sent) and the server's (received). The
        # scrapes' own loopback connections close after the scrape too, and are journaled.
        def journaled():
            with open(journal) as f:
                lines = [json.loads(line) for line in f]
            # values: sent, received, closed (marked before the notice)
            ours = sorted(r["values"] for r in lines if r["taken"] and r["values"] in ([35_000, 0, 1], [0, 35_000, 1]))
            return lines if ours == [[0, 35_000, 1], [35_000, 0, 1]] else None
        records = lib.wait_until("both closes journaled", journaled, 20)
        self.assertEqual([r["taken"] for r in records], [False, True] * (len(records) // 2))
        self.assertEqual([r["seq"] for r in records[::2]], [r["seq"] for r in records[1::2]])
        with open(self.state) as f:
            self.assertEqual([s for s in json.load(f)["tables"]["tcp_sent"]["series"]
                              if s["labels"] == list(labels.values())], saved, "not saved yet")
        self.kill9(p)

        kept.sendall(b"x" * 1_000)
        p, addr = self.start(config)
        self.assertIn(f"journal {journal}: read {len(records) // 2} takes", p.tail(100))
        text = self.scrape(addr)
        self.assertEqual(self.value(text, "execflow_tcp_sent_bytes_total", labels), 76_000)
        self.assertEqual(self.value(text, "execflow_tcp_received_bytes_total", peer_labels), 35_000)
        # The state file holds the takes now; the journal holds none of them (only takes of
        # this process after the save: the closes of the test's own HTTP connections).
        with open(self.state) as f:
            self.assertGreaterEqual(json.load(f)["tables"]["tcp_sent"]["taken"], records[-1]["seq"])
        with open(journal) as f:
            later = [json.loads(line)["seq"] for line in f]
        self.assertEqual([s for s in later if s <= records[-1]["seq"]], [])
        self.assertEqual(os.stat(journal).st_mode & 0o7777, 0o600)
        self.assertEqual(p.stop(), 0)

    def test_a_workload_that_goes_while_no_exporter_runs_keeps_its_series(self):
        """20 rounds of sh -> setpriv -> /bin/true in a podman-style cgroup: 40 execs under
        its container id. kill -9, the cgroup goes while no exporter runs, and the next
        exporter, whose resolver cannot name a cgroup that is gone, keeps the 40 there
        (it used to read 0, the 40 moved to the empty-label series)."""
        uid = UID_BASE + 3
        cid = "%064x" % (os.getpid() * 7919 + 3)
        cgroup = os.path.join(lib.cgroup2_root(), "libpod_parent", f"libpod-{cid}")
        os.makedirs(cgroup)
        self.addCleanup(lambda: os.path.isdir(cgroup) and os.rmdir(cgroup))
        p, addr = self.start()
        inside = f'echo $$ > {cgroup}/cgroup.procs && exec setpriv --reuid={uid} --regid={uid} --clear-groups /bin/true'
        for _ in range(20):
            subprocess.run(["sh", "-c", inside], check=True)

        def container_execs(text):
            return sum(v for n, labels, v in lib.scrape_values(text)
                       if n == "execflow_execs_total" and labels.get("container") == cid[:12])

        def host_execs(text):
            return self.value(text, "execflow_execs_total", {"uid": str(uid), "container": ""})
        before = self.scrape(addr)
        self.assertEqual(container_execs(before), 40)
        self.assertEqual(host_execs(before), 0)
        self.kill9(p)
        os.rmdir(cgroup)

        p, addr = self.start()
        for _ in range(3):  # the first scrape takes the gone cgroup's keys out of the kernel maps
            text = self.scrape(addr)
            self.assertEqual(container_execs(text), 40)
            self.assertEqual(self.value(text, "execflow_execs_total", {"uid": str(uid), "container": cid[:12]}), 20)
            self.assertEqual(host_execs(text), 0)
        self.assertEqual(p.stop(), 0)

    def test_a_close_notice_delivered_again_after_a_kill_counts_once(self):
        """A killed process may die while it handles a close notice: the pinned ring hands
        the notice again, and its journal holds the take half done. The journal is
        replayed before the ring is read, so the flow is counted once (the ring was read
        first, and both counted it: 20,000 of 10,000)."""
        config = self.nosport_config()
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        self.addCleanup(server.close)
        labels = {"saddr": "127.0.0.1", "daddr": "127.0.0.1", "dport": str(server.getsockname()[1])}
        client = socket.create_connection(server.getsockname())
        peer, _ = server.accept()
        self.addCleanup(peer.close)
        p, addr = self.start(config)
        client.sendall(b"x" * 10_000)
        got = 0
        while got < 10_000:
            got += len(peer.recv(1 << 16))

        def saved():
            self.scrape(addr)
            with open(self.state) as f:
                table = json.load(f)["tables"]["tcp_sent"]
            return table if [s for s in table["series"] if s["labels"] == list(labels.values())] else None
        taken = lib.wait_until("the flow saved", saved, 20)["taken"]
        key = flow_key(client)
        self.kill9(p)

        client.close()  # its close notice waits in the pinned ring
        self.assertEqual(peer.recv(1), b"")
        # What the killed process would have left had it died in the middle of the take.
        with open(self.state + ".tcp.journal", "w") as f:
            f.write(json.dumps({"seq": taken + 1, "map": "tcp_flows", "key": key, "values": [10_000, 0, 1],
                                "taken": False}) + "\n")
        os.chmod(self.state + ".tcp.journal", 0o600)
        p, addr = self.start(config)
        self.assertIn(f"journal {self.state}.tcp.journal: read 1 takes", p.tail(100))
        for _ in range(3):
            self.assertEqual(self.value(self.scrape(addr), "execflow_tcp_sent_bytes_total", labels), 10_000)
        self.assertEqual(p.stop(), 0)

    def test_a_state_file_named_by_mistake_is_left_alone(self):
        """bpf.state_file naming a file that is not one (a typo in a ConfigMap): the exporter
        runs without a state file and deletes nothing (it deleted the file and two siblings)."""
        precious = os.path.join(self.tmp, "precious.conf")
        files = {precious: "do not delete\n", precious + ".exec.journal": "nor this\n",
                 precious + ".tcp.journal": "nor this one\n"}
        for path, text in files.items():
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o600)
        for pinned in (False, True):
            with self.subTest(pinned=pinned):
                config = os.path.join(self.tmp, f"typo{pinned}.yaml")
                with open(config, "w") as f:
                    f.write(f"bpf:\n  pin_path: {self.pin if pinned else 'off'}\n  state_file: {precious}\n")
                p, addr = self.start(config)
                self.assertIn(f"state file {precious}: not used: {precious} is not a state file or journal this "
                              "exporter wrote", p.tail(100))
                self.scrape(addr)
                self.assertEqual(p.stop(), 0)
                for path, text in files.items():
                    with open(path) as f:
                        self.assertEqual(f.read(), text, path)

    def test_a_state_file_others_could_have_written_is_not_read(self):
        """A state file in a folder every user may write to (0777), owned by another user,
        with forged series: not read, one warning saying why; nothing forged is exported."""
        p, addr = self.start()
        self.assertEqual(p.stop(), 0)
        run = os.path.dirname(self.state)
        with open(self.state) as f:
            state = json.load(f)
        table = state["tables"]["tcp_sent"]
        table["series"].append({"labels": ["10.6.6.6", "6666", "10.6.6.6", "6666", "", "", ""][:len(table["label_names"])],
                                "retired": 10 ** 18, "live": False})
        with open(self.state, "w") as f:
            json.dump(state, f)
        os.chown(self.state, 4242, 4242)
        os.chmod(run, 0o777)
        p, addr = self.start()
        self.assertIn(f"state file {self.state}: not used: {self.state} is not a state file or journal this "
                      f"exporter wrote ({self.state} is owned by uid 4242, not by this process's user (uid 0))",
                      p.tail(100))
        text = self.scrape(addr)
        self.assertNotIn("10.6.6.6", text)
        self.assertEqual(p.stop(), 0)
        self.assertEqual(os.stat(self.state).st_uid, 4242, "someone else's file is never replaced")

    def test_perf_buffer_counts_exactly_and_says_what_it_lost(self):
        """A perf event array is emptied when its reader goes: the down time's exec events
        are lost and counted as dropped; the counts stay exact."""
        uid = UID_BASE + 2
        config = self.write_config("events:\n  transport: perfbuf\n", "perfbuf.yaml")
        p, addr = self.start(config)
        self.assertEqual(as_uid(uid, 20), 0)
        self.assertEqual(len(lib.wait_until("20 exec events", lambda: self.events(addr, uid, 20), 20)), 20)
        dropped = self.value(self.scrape(addr), "execflow_exec_events_dropped_total", {})
        self.kill9(p)
        self.assertEqual(as_uid(uid, 30), 0)
        p, addr = self.start(config)
        text = self.scrape(addr)
        self.assertEqual(self.value(text, "execflow_bpf_state_adopted", {"collector": "exec"}), 1)
        self.assertEqual(self.value(text, "execflow_execs_total", {"uid": str(uid)}), 50)
        self.assertGreaterEqual(self.value(text, "execflow_exec_events_dropped_total", {}) - dropped, 30)
        self.assertEqual(self.events(addr, uid, 0), [])
        self.assertEqual(p.stop(), 0)

    def test_another_layout_is_replaced_and_said_so(self):
        p, addr = self.start()
        self.assertEqual(p.stop(), 0)
        other = self.write_config("exec:\n  max_uids: 4096\n", "other.yaml")
        p, addr = self.start(other)
        log = p.tail(100)
        self.assertIn(f"pinned state in {self.pin}/exec is from another layout (", log)
        self.assertIn("exec_counts:1:16:8:10240:0", log)
        self.assertIn("exec_counts:1:16:8:4096:0", log)
        self.assertIn("): replacing it", log)
        self.assertNotIn(f"pinned state in {self.pin}/tcp", log)
        text = self.scrape(addr)
        self.assertEqual(self.value(text, "execflow_bpf_state_adopted", {"collector": "exec"}), 0)
        self.assertEqual(self.value(text, "execflow_bpf_state_pinned", {"collector": "exec"}), 1)
        self.assertEqual(self.value(text, "execflow_bpf_state_adopted", {"collector": "tcp"}), 1)
        self.assertEqual(self.value(text, "execflow_bpf_map_capacity", {"map": "exec_counts"}), 4096)
        self.assertEqual(p.stop(), 0)

    def test_unpin_removes_everything_and_detaches(self):
        p, addr = self.start()
        # A second exporter, or --bpf.unpin, is refused while one uses the state.
        r = subprocess.run([BINARY, f"--config.file={self.config}", "--bpf.unpin"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(f"bpf.pin_path {self.pin}: another execflow process uses it (stop it first)", r.stderr)
        self.assertEqual(p.stop(), 0)
        link = os.path.join(self.pin, "exec", "links", "exec_btf")
        if not os.path.exists(link):
            link = os.path.join(self.pin, "exec", "links", "exec_tp")
        shown = subprocess.run(["bpftool", "-j", "link", "show", "pinned", link],
                               capture_output=True, text=True)
        self.assertEqual(shown.returncode, 0, shown.stderr)
        link_id = json.loads(shown.stdout)["id"]
        pins = sorted(os.path.relpath(os.path.join(d, f), self.pin)
                      for d, _, files in os.walk(self.pin) for f in files)
        self.assertIn("exec/stamp", pins)
        self.assertIn("tcp/maps/tcp_flows", pins)

        r = subprocess.run([BINARY, f"--config.file={self.config}", "--bpf.unpin"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(r.stdout.startswith(f"removed {len(pins)} pins from {self.pin}:"), r.stdout)
        self.assertEqual(sorted(r.stdout.split(":", 1)[1].split()), pins)
        self.assertFalse(os.path.exists(self.pin))
        gone = subprocess.run(["bpftool", "link", "show", "id", str(link_id)], capture_output=True, text=True)
        self.assertNotEqual(gone.returncode, 0, "the exec program is still attached: " + gone.stdout)
        r = subprocess.run([BINARY, f"--config.file={self.config}", "--bpf.unpin"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual((r.returncode, r.stdout), (0, f"nothing pinned in {self.pin}\n"))


if __name__ == "__main__":
    lib.stop_on_sigterm()
    BINARY = lib.exporter_binary(sys.argv)
    unittest.main(argv=[sys.argv[0], "-v"])
