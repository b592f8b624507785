#!/usr/bin/env python3
"""Restarts under fire: connections open, send and close without pause while /metrics is
scraped every 100 ms and the exporter is killed with SIGKILL at random moments (during
start-up too), at least 20 times. Afterwards every series equals the bytes sent to it, to
the byte, and no scrape ever read less than the one before it.

Two label sets: aggregated ([daddr, dport]: every connection to a server port is one
series, built from closed flows user space took out of the kernel map), and workload
labels whose containers come and go ([dport, container]: podman-style cgroups, each made,
used by one process that execs, connects and sends, then removed, often while no exporter
runs).

Clients connect from many loopback addresses, as a server's clients come from many peers.
From one address at this rate Linux reuses a 4-tuple at once (net.ipv4.tcp_tw_reuse=2 on
loopback), and a restarted exporter catching up on the closes it missed may take the old
connection's kernel entry while the new one adds to it: a send can be lost in that race,
which no BPF hash map can close (a lookup-and-delete cannot stop a program that already
holds the entry). Socket storage mode narrows it to the new connection's close: until then
its sends count in the socket's own storage, not in the entry.

run_faults() is also what the kernel matrix runs in its guests (tests/vm/guest.py).

Usage: faults_e2e.py BINARY [--kills N] [--seed S] [--storage socket|flow_map]. Needs root;
a skip is a failure under CI=true. The seed is printed, so a failure can be replayed.
"""
import argparse
import os
import random
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_lib as lib  # noqa: E402

SERVERS = 3


class Sink:
    """Loopback TCP servers that read everything; counts what each port received."""

    def __init__(self):
        self.listeners = []
        for _ in range(SERVERS):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            s.listen(512)
            s.setblocking(False)
            self.listeners.append(s)
        self.ports = [s.getsockname()[1] for s in self.listeners]
        self.received = {p: 0 for p in self.ports}
        self.open = 0
        self.lock = threading.Lock()
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        sel = selectors.DefaultSelector()
        for s in self.listeners:
            sel.register(s, selectors.EVENT_READ, ("listen", s.getsockname()[1]))
        while not self.stop:
            for key, _ in sel.select(timeout=0.1):
                kind, port = key.data
                if kind == "listen":
                    try:
                        conn, _ = key.fileobj.accept()
                    except BlockingIOError:
                        continue
                    conn.setblocking(False)
                    sel.register(conn, selectors.EVENT_READ, ("conn", port))
                    with self.lock:
                        self.open += 1
                    continue
                try:
                    data = key.fileobj.recv(1 << 16)
                except BlockingIOError:
                    continue
                except ConnectionError:
                    data = b""
                with self.lock:
                    self.received[port] += len(data)
                    if not data:
                        self.open -= 1
                if not data:
                    sel.unregister(key.fileobj)
                    key.fileobj.close()

    def close(self):
        self.stop = True
        self.thread.join(timeout=10)
        for s in self.listeners:
            s.close()


class Load:
    """Threads that connect, send a random number of bytes and close, without pause.
    `sent[port]` is what the clients sent to each server port."""

    def __init__(self, sink, rng, threads=3):
        self.sink = sink
        self.sent = {p: 0 for p in sink.ports}
        self.lock = threading.Lock()
        self.stop = False
        self.rngs = [random.Random(rng.random()) for _ in range(threads)]
        self.threads = [threading.Thread(target=self._run, args=(r,), daemon=True) for r in self.rngs]
        for t in self.threads:
            t.start()

    def _run(self, rng):
        while not self.stop:
            port = rng.choice(self.sink.ports)
            n = rng.randint(1, 2_000)
            # From one of 65,024 loopback addresses: see the module's docstring.
            source = (f"127.{rng.randint(1, 254)}.{rng.randint(1, 254)}.{rng.randint(1, 254)}", 0)
            with socket.create_connection(("127.0.0.1", port), source_address=source) as c:
                c.sendall(b"x" * n)
            with self.lock:
                self.sent[port] += n

    def finish(self):
        self.stop = True
        for t in self.threads:
            t.join(timeout=30)


WORKER = """
import os, socket, subprocess, sys
uid, port, execs, sizes = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), [int(x) for x in sys.argv[4:]]
sys.stdin.readline()  # named: go
for _ in range(execs):
    subprocess.run(["/bin/true"], user=uid, group=uid, extra_groups=[], check=True)
for n in sizes:
    with socket.create_connection(("127.0.0.1", port)) as c:
        c.sendall(b"y" * n)
"""


class Containers:
    """Podman-style cgroups that come and go. Each is made and one process moves in and
    execs python3; once a scrape has named the container, the process execs /bin/true as
    a UID of the test's, connects to a server and sends, and exits; the cgroup is removed
    by a later round, often while no exporter runs. (A container is named before it
    counts: one whose whole life falls while no exporter runs cannot be named, issue 18.)
    `sent[(id12, port)]` is what each sent, `execs[id12]` its execs as that UID."""

    def __init__(self, sink, rng, named, uid):
        self.named = named  # the container ids a scrape has shown
        self.uid = uid
        self.sink = sink
        self.rng = rng
        self.root = os.path.join(lib.cgroup2_root(), "libpod_parent")
        self.sent = {}
        self.execs = {}
        self.live = []  # [cgroup, id12, process, released]
        self.count = 0

    def round(self):
        for c in list(self.live):
            cgroup, cid, proc, released = c
            if not released and cid in self.named:
                proc.stdin.write(b"go\n")
                proc.stdin.close()
                c[3] = True
            elif released and proc.poll() is not None:
                assert proc.returncode == 0, f"a container's process failed: {proc.returncode}"
                os.rmdir(cgroup)  # while an exporter runs, or not
                self.live.remove(c)
        cid = f"{self.count:06x}{os.getpid() % (1 << 24):06x}".ljust(64, "e")  # 12 hex digits of its own
        self.count += 1
        cgroup = os.path.join(self.root, f"libpod-{cid}")
        os.makedirs(cgroup)
        port = self.rng.choice(self.sink.ports)
        sizes = [self.rng.randint(1, 50_000) for _ in range(self.rng.randint(1, 4))]
        execs = self.rng.randint(1, 3)
        proc = subprocess.Popen(["sh", "-c", f'echo $$ > {cgroup}/cgroup.procs && exec "$@"', "sh",
                                 sys.executable, "-c", WORKER, str(self.uid), str(port), str(execs),
                                 *map(str, sizes)], stdin=subprocess.PIPE)
        self.live.append([cgroup, cid[:12], proc, False])
        self.sent[(cid[:12], port)] = sum(sizes)
        self.execs[cid[:12]] = execs

    def finish(self):
        try:
            lib.wait_until("every container named", lambda: all(c[1] in self.named for c in self.live), 30)
        except TimeoutError:
            raise TimeoutError("no scrape named " + ", ".join(c[1] for c in self.live if c[1] not in self.named)) from None
        for c in self.live:
            if not c[3]:
                c[2].stdin.write(b"go\n")
                c[2].stdin.close()
            assert c[2].wait(timeout=60) == 0
            os.rmdir(c[0])
        self.live = []

    def kill(self):
        for cgroup, _, proc, _ in self.live:
            proc.kill()
            proc.wait()
            os.rmdir(cgroup)


class Scraper:
    """Scrapes the running exporter every 100 ms; keeps each scrape's values of the series
    `wanted` picks out, in order."""

    def __init__(self, wanted, timeout=2):
        self.wanted = wanted
        self.timeout = timeout
        self.address = None
        self.scrapes = []
        self.containers = set()  # every container label a scrape showed
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop:
            address = self.address
            if address:
                try:
                    text = lib.http_get(f"http://{address}/metrics", timeout=self.timeout)
                    self.scrapes.append(self.wanted(text))
                    self.containers.update(lbl["container"] for _, lbl, _ in lib.scrape_values(text)
                                           if lbl.get("container"))
                except OSError:
                    pass  # killed meanwhile
            time.sleep(0.1)

    def finish(self):
        self.stop = True
        self.thread.join(timeout=10)

    def decreases(self):
        """Every (series, before, after) where a scrape read less than an earlier one."""
        high, out = {}, []
        for s in self.scrapes:
            for k, v in s.items():
                if v < high.get(k, 0):
                    out.append((k, high[k], v))
                high[k] = max(high.get(k, 0), v)
        return out


def run_faults(binary, tmp, labels, kills, seed, containers=False, log=print, ready_timeout=30, threads=3, slow=1,
               storage=None):
    """The whole run for one label set; returns a list of failures (empty: exact).
    `ready_timeout`: how long a start may take; `threads`: load threads; `slow`: how much
    longer the exporter lives between kills and a scrape may take (under emulation);
    `storage`: where the TCP collector must count ("socket" or "flow_map"; None: either)."""
    rng = random.Random(seed)
    bpffs = os.path.join(tmp, "bpffs")
    os.makedirs(bpffs, exist_ok=True)
    subprocess.run(["mount", "-t", "bpf", "bpf", bpffs], check=True)
    sink = Sink()
    config = os.path.join(tmp, "faults.yaml")
    exec_labels = "[uid, container]" if containers else "[uid]"
    with open(config, "w") as f:
        f.write(f"bpf:\n  pin_path: {bpffs}/execflow\n  state_file: {tmp}/run/state.json\n"
                f"exec:\n  labels: {exec_labels}\n"
                # Room for the flows that close while no exporter runs or one is starting
                # (about 10,000 a second here): a full map would fold them into "other".
                f"tcp:\n  labels: [{', '.join(labels)}]\n  closed_flow_retention: 1h\n  max_flows: 262144\n")

    def key_of(name, lbl):
        if name == "execflow_tcp_sent_bytes_total" and lbl.get("dport") in map(str, sink.ports):
            return (name,) + tuple(lbl.get(k, "") for k in labels)
        if name == "execflow_execs_total" and containers and lbl.get("uid") == str(uid):
            return (name, lbl["container"])
        return None

    def wanted(text):
        out = {}
        for name, lbl, v in lib.scrape_values(text):
            k = key_of(name, lbl)
            if k:
                out[k] = out.get(k, 0) + v
        return out

    # A scrape reads every flow the map holds (about 10,000 more each second here); under
    # the sanitizers one takes seconds. Its time is not what this test checks.
    scraper = Scraper(wanted, timeout=30 * slow)
    load = None
    uid = 3920000000 + os.getpid() % 10000  # a UID no one else uses: its execs are the containers'
    pods = Containers(sink, rng, scraper.containers, uid) if containers else None
    proc = None
    failures = []
    try:
        # The first start completes: what is counted from then on must survive every kill.
        proc, scraper.address = lib.start_exporter(binary, tmp, config, ready_timeout=ready_timeout)
        first = lib.http_get(f"http://{scraper.address}/metrics", timeout=30 * slow)
        used = next((l["storage"] for n, l, _ in lib.scrape_values(first) if n == "execflow_tcp_storage_info"), None)
        log(f"faults {labels}: the TCP collector counts in {used} storage")
        if storage is not None and used != storage:
            raise AssertionError(f"the TCP collector counts in {used} storage; this run is for {storage}")
        load = Load(sink, rng, threads)
        for i in range(kills):
            if pods:
                pods.round()
            if rng.random() < 0.25 or scraper.address is None:
                # Killed during start-up: loading, adopting, replaying its journal.
                time.sleep(rng.uniform(0, 0.4))
            else:
                read = len(scraper.scrapes)
                time.sleep(rng.uniform(0.1, 1.2) * slow)
                # Every exporter that got ready is scraped at least once before it is killed.
                lib.wait_until("a scrape of this exporter", lambda: len(scraper.scrapes) > read, 60 * slow)
            proc.proc.send_signal(signal.SIGKILL)
            proc.proc.wait(timeout=30)
            scraper.address = None
            if pods and rng.random() < 0.5:
                pods.round()  # a container comes and a finished one goes while none runs
            time.sleep(rng.uniform(0, 0.3))
            if rng.random() < 0.25 and i + 1 < kills:
                address = f"127.0.0.1:{lib.free_port()}"
                proc = lib.Process("exporter", [binary, f"--config.file={config}",
                                                f"--web.listen-address={address}"], tmp)
            else:
                proc, scraper.address = lib.start_exporter(binary, tmp, config, ready_timeout=ready_timeout)
        if proc.proc.poll() is None and scraper.address is None:
            proc.proc.kill()
            proc.proc.wait()
        if proc.proc.poll() is not None:
            proc, scraper.address = lib.start_exporter(binary, tmp, config, ready_timeout=ready_timeout)
        load.finish()
        if pods:
            pods.finish()
        sent = sum(load.sent.values()) + (sum(pods.sent.values()) if pods else 0)
        try:
            lib.wait_until("every byte received", lambda: sink.open == 0 and sum(sink.received.values()) == sent, 60)
        except TimeoutError:
            raise TimeoutError(f"the servers received {sum(sink.received.values())} of {sent} bytes; "
                               f"{sink.open} connections open") from None
        want = {}
        for port, n in load.sent.items():
            k = ("execflow_tcp_sent_bytes_total",) + tuple({"daddr": "127.0.0.1", "dport": str(port),
                                                             "container": ""}[x] for x in labels)
            want[k] = want.get(k, 0) + n
        if pods:
            for (cid, port), n in pods.sent.items():
                k = ("execflow_tcp_sent_bytes_total",) + tuple({"daddr": "127.0.0.1", "dport": str(port),
                                                                 "container": cid}[x] for x in labels)
                want[k] = want.get(k, 0) + n
            for cid, n in pods.execs.items():
                want[("execflow_execs_total", cid)] = n
        address = scraper.address

        def exact():
            got = wanted(lib.http_get(f"http://{address}/metrics", timeout=10))
            return got if got == want else None
        full = lib.sample_sum(lib.http_get(f"http://{address}/metrics", timeout=10),
                              "execflow_bpf_map_update_failures_total", {"map": "tcp_flows"})
        if full:
            failures.append(f"the flow map filled ({full:.0f} inserts refused): the load outran tcp.max_flows")
        try:
            lib.wait_until("every series exact", exact, 30)
        except TimeoutError:
            text = lib.http_get(f"http://{address}/metrics", timeout=10)
            got = wanted(text)
            for k in sorted(set(want) | set(got)):
                if want.get(k) != got.get(k):
                    failures.append(f"{k}: expected {want.get(k)}, got {got.get(k)}")
        scraper.finish()
        failures += [f"{k} decreased from {a} to {b}" for k, a, b in scraper.decreases()]
        total = sum(load.sent.values()) + (sum(pods.sent.values()) if pods else 0)
        log(f"faults {labels}: {kills} kills, {len(scraper.scrapes)} scrapes, {len(want)} series, "
            f"{total} bytes{f', {pods.count} containers' if pods else ''}: "
            f"{'exact' if not failures else f'{len(failures)} failures'}")
        if proc.proc.poll() is None and proc.stop() != 0:
            failures.append(f"SIGTERM did not exit 0:\n{proc.tail()}")
    finally:
        if load:
            load.stop = True
        scraper.stop = True
        if proc and proc.proc.poll() is None:
            proc.proc.kill()
            proc.proc.wait()
        if pods:
            pods.kill()
        sink.close()
        subprocess.run(["umount", bpffs], check=False)
    return failures


# Aggregated labels, and workload labels whose containers come and go (containers: True).
LABEL_SETS = ((["daddr", "dport"], False), (["dport", "container"], True))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--kills", type=int, default=25)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--storage", choices=["socket", "flow_map"],
                        help="where the TCP collector must count (default: either)")
    args = parser.parse_args()
    lib.stop_on_sigterm()
    binary = lib.exporter_binary([sys.argv[0], args.binary])
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print(f"faults_e2e: seed {seed} (replay with --seed {seed})", flush=True)
    failed = []
    for labels, containers in LABEL_SETS:
        with lib.workdir("execflow-faults-") as tmp:
            failed += run_faults(binary, tmp, labels, args.kills, seed, containers, storage=args.storage)
    for f in failed:
        print("FAIL", f)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
