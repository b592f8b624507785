#!/usr/bin/env python3
"""The built binary against hostile input and a hostile network (issue 10): config files
that are not config files, stop signals during start-up, listen addresses (IPv6 only where
the civetweb it loads has IPv6), nothing served before authentication, HTTP methods and
queries, TLS as Debian 12 ships it, capabilities after attach (root and non-root), the
events file's modes under umask 000.

Usage: hardening_e2e.py BINARY. Needs root; a skip is a failure under CI=true.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_lib as lib  # noqa: E402

BINARY = None
CONFIG = os.path.join(lib.REPO, "config", "execflow.yaml")


def run(args, timeout=60, **kw):
    return subprocess.run([BINARY] + args, capture_output=True, text=True, timeout=timeout, **kw)


def status(url, method="GET", auth=None, cafile=None):
    """The HTTP status of a request (0 when no HTTP answer came)."""
    import base64
    import ssl
    req = urllib.request.Request(url, method=method)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    ctx = ssl.create_default_context(cafile=cafile) if url.startswith("https") else None
    try:
        with urllib.request.urlopen(req, timeout=5, context=ctx) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, OSError):
        return 0


def civetweb_has_ipv6(binary):
    """mg_check_feature(8), as the exporter asks it, of the libcivetweb the binary loads."""
    import ctypes
    ldd = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    paths = [f.split()[2] for f in ldd.splitlines() if "libcivetweb.so" in f and "=> /" in f]
    if len(paths) != 1:
        raise RuntimeError(f"{binary} does not load one libcivetweb:\n{ldd}")
    return ctypes.CDLL(paths[0]).mg_check_feature(8) != 0


def raw(address, request, timeout=5):
    """Sends bytes, returns everything the server sends until it closes."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(request)
        out = b""
        while True:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            if not b:
                break
            out += b
    return out.decode("utf-8", "replace")


def thread_caps(pid):
    """{(CapEff, CapPrm)} over every thread of pid."""
    caps = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        fields = {}
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        caps.add((fields["CapEff"], fields["CapPrm"]))
    return caps


def metric_line(text, prefix):
    return [line for line in text.splitlines() if line.startswith(prefix)]


class ConfigInput(unittest.TestCase):
    """Regular files only, a size cap, one document, no duplicate keys, bounded errors."""

    def refused(self, path, expect):
        t0 = time.monotonic()
        r = run(["--config.check", f"--config.file={path}"], timeout=20)
        self.assertEqual(r.returncode, 2, r.stderr)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn(expect, lines[0])
        self.assertLess(len(lines[0]), 400, lines[0])
        self.assertLess(time.monotonic() - t0, 5)
        return lines[0]

    def test_directory_fifo_and_device_are_refused_at_once(self):
        with tempfile.TemporaryDirectory() as tmp:
            self.refused(tmp, f"read config {tmp}: a directory, not a regular file")
            fifo = os.path.join(tmp, "fifo")
            os.mkfifo(fifo)
            self.refused(fifo, f"read config {fifo}: a FIFO, not a regular file")
        self.refused("/dev/zero", "read config /dev/zero: a character device, not a regular file")

    def test_big_file_is_refused_by_size(self):
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write("# " + "x" * (9 << 20) + "\n")
            f.flush()
            line = self.refused(f.name, f"read config {f.name}: larger than the 256 KiB limit")
            self.assertNotIn("xxxx", line)

    def test_second_document_and_duplicate_keys(self):
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write("tcp:\n  enabled: false\n---\ntcp:\n  enabled: true\n")
            f.flush()
            self.refused(f.name, f"{f.name}:3: a second YAML document ('---'): execflow reads exactly one")
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write(", enabled: true\n")  # yaml-cpp's LoadAll() would spin on it
            f.flush()
            self.refused(f.name, f"{f.name}:1:1: invalid YAML: no document could be read")
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write("tcp:\n  enabled: false\n  enabled: true\n")
            f.flush()
            self.refused(f.name, f"{f.name}:3: tcp.enabled: duplicate key (first at line 2)")

    def test_errors_do_not_echo_other_files(self):
        line = self.refused("/etc/shadow", "/etc/shadow:1: <key not shown>: unknown key")
        with open("/etc/shadow") as f:
            first = f.readline().strip()
        self.assertNotIn(first.split(":")[0] + ":", line.split("msg=", 1)[-1].replace("/etc/shadow:", ""))
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write("exec:\n  hook: " + "A" * 100000 + "\n")
            f.flush()
            line = self.refused(f.name, "exec.hook: expected one of auto, tp_btf, tracepoint, got 'AAAA")
            self.assertIn("...' (100000 bytes)", line)


class StartupSignals(unittest.TestCase):
    def test_sigterm_and_sigint_end_start_up_at_any_moment(self):
        with tempfile.TemporaryDirectory() as tmp:
            for sig in (signal.SIGTERM, signal.SIGINT):
                for delay in (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.6, 1.0):
                    with open(os.path.join(tmp, "log"), "w+") as log:
                        p = subprocess.Popen([BINARY, f"--config.file={CONFIG}",
                                              f"--web.listen-address=127.0.0.1:{lib.free_port()}"],
                                             stdout=log, stderr=subprocess.STDOUT)
                        time.sleep(delay)
                        p.send_signal(sig)
                        try:
                            rc = p.wait(timeout=3)
                        except subprocess.TimeoutExpired:
                            p.kill()
                            self.fail(f"{sig.name} {delay}s after start: still running 3 s later")
                        log.seek(0)
                        out = log.read()
                    # During start-up: 128+N at once; once serving: the clean stop. (Before
                    # main() runs at all, the default action ends it: -N.)
                    if rc == -sig:
                        continue
                    if rc == 128 + sig:
                        self.assertIn(f"{sig.name} during start-up; exiting", out)
                    else:
                        self.assertEqual(rc, 0, f"{sig.name} at {delay}s: exit {rc}\n{out}")
                        self.assertIn("stopped", out)


class ListenAddress(unittest.TestCase):
    def test_bad_addresses_exit_2_before_attaching(self):
        for addr, why in ((":99999", "port out of range"), ("9741", "expected [HOST]:PORT"),
                          ("localhost:9741", "the host must be an IP address")):
            r = run([f"--config.file={CONFIG}", f"--web.listen-address={addr}"])
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn(f"--web.listen-address '{addr}': {why}", r.stderr)
            self.assertNotIn("attached", r.stderr)
        r = run([f"--config.file={CONFIG}", "--web.max-connections=0"])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--web.max-connections '0': expected 1 to 4096", r.stderr)

    def test_ipv6_address_is_served_or_refused_as_civetweb_allows(self):
        # Debian 12's civetweb has no IPv6: the address is refused in one line before
        # anything is attached. Debian 13's (the container image's) serves it.
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
            addr = f"[::1]:{s.getsockname()[1]}"
        if not civetweb_has_ipv6(BINARY):
            r = run([f"--config.file={CONFIG}", f"--web.listen-address={addr}"])
            self.assertEqual(r.returncode, 2, r.stderr)
            lines = [line for line in r.stderr.splitlines() if line.strip()]
            self.assertEqual(len(lines), 1, r.stderr)
            self.assertIn(f"--web.listen-address '{addr}': this build of civetweb has no IPv6 (Debian 12's "
                          "is built without it); use an IPv4 address", lines[0])
            return
        with tempfile.TemporaryDirectory() as tmp:
            p = lib.Process("exporter", [BINARY, f"--config.file={CONFIG}", f"--web.listen-address={addr}"], tmp)
            try:
                lib.wait_until("/readyz on " + addr,
                               lambda: p.check_running() and status(f"http://{addr}/readyz") == 200, 30)
                metrics = lib.http_get(f"http://{addr}/metrics")
            finally:
                rc = p.stop()
            self.assertEqual(rc, 0, p.tail())
            build = [line for line in metrics.splitlines() if line.startswith("execflow_build_info{")]
            self.assertEqual(len(build), 1, metrics)
            self.assertTrue(build[0].endswith("} 1"), build)

    def test_unbindable_address_says_why(self):
        r = run([f"--config.file={CONFIG}", "--web.listen-address=192.0.2.1:9741"])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("listen on 192.0.2.1:9741: no network interface of this host has that address", r.stderr)
        self.assertNotIn("port in use", r.stderr)
        self.assertNotIn("attached", r.stderr)
        # Even as root: the server starts after every capability is dropped.
        r = run([f"--config.file={CONFIG}", "--web.listen-address=127.0.0.1:80"])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("listen on 127.0.0.1:80: ports below 1024 need CAP_NET_BIND_SERVICE, which execflow "
                      "gives up before it listens", r.stderr)
        self.assertNotIn("attached", r.stderr)


class AuthenticationFromTheStart(unittest.TestCase):
    def test_nothing_is_served_unauthenticated_during_start_up(self):
        with tempfile.TemporaryDirectory() as tmp:
            web = os.path.join(tmp, "web.yml")
            with open(web, "w") as f:
                f.write(f"basic_auth_users:\n  prometheus: '{lib.bcrypt('pw', 4)}'\n")
            port = lib.free_port()
            seen, stop = [], threading.Event()

            def hammer():
                while not stop.is_set():
                    seen.append(status(f"http://127.0.0.1:{port}/metrics"))
            t = threading.Thread(target=hammer)
            t.start()
            p = lib.Process("exporter", [BINARY, f"--config.file={CONFIG}", f"--web.listen-address=127.0.0.1:{port}",
                                         f"--web.config.file={web}"], tmp)
            try:
                lib.wait_until("healthz", lambda: status(f"http://127.0.0.1:{port}/healthz") == 200, 30)
                # Some answers from the server as it serves, not only from its start.
                served = len(seen)
                lib.wait_until("20 answers once serving", lambda: len([s for s in seen[served:] if s]) >= 20, 30)
            finally:
                stop.set()
                t.join()
                p.stop()
            answered = [s for s in seen if s]
            self.assertNotIn(200, seen)
            self.assertGreater(len(answered), 0)
            self.assertEqual(set(answered), {401}, sorted(set(seen)))


class HttpOnTheBinary(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="execflow-hardening-")
        cls.proc, cls.addr = lib.start_exporter(BINARY, cls.tmp)

    @classmethod
    def tearDownClass(cls):
        cls.proc.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_methods(self):
        base = f"http://{self.addr}"
        self.assertEqual(status(f"{base}/metrics", "HEAD"), 200)
        self.assertEqual(status(f"{base}/", "HEAD"), 200)
        self.assertEqual(status(f"{base}/api/v1/events", "HEAD"), 200)
        self.assertEqual(status(f"{base}/readyz", "DELETE"), 405)
        post = raw(self.addr, b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(post.startswith("HTTP/1.1 405 "), post)
        self.assertIn("Allow: GET, HEAD, OPTIONS", post)
        # urllib sends "Content-Length: 0" with a POST: any body framing is refused first.
        self.assertEqual(status(f"{base}/metrics", "POST"), 400)
        star = raw(self.addr, b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(star.startswith("HTTP/1.1 204 "), star)
        self.assertIn("Allow: GET, HEAD, OPTIONS", star)

    def test_a_smuggled_request_is_never_served(self):
        smuggled = b"GET /api/v1/events HTTP/1.1\r\nHost: x\r\n\r\n"
        n = str(len(smuggled)).encode()
        for framing in (b"Content-Length: 0\r\nContent-Length: " + n, b"Content-Length: 0, " + n,
                        b"Content-Length: 0x", b"content-length: 0", b"Transfer-Encoding: chunked"):
            body = b"0\r\n\r\n" if b"chunked" in framing else b""
            got = raw(self.addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + framing + b"\r\n\r\n" + body + smuggled)
            self.assertTrue(got.startswith("HTTP/1.1 400 Bad Request\r\n"), (framing, got))
            self.assertEqual(got.count("HTTP/1."), 1, (framing, got))
            self.assertIn("Connection: close\r\n", got)

    def test_a_malformed_request_is_not_echoed(self):
        bad = ("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 12\r\n"
               "Cache-Control: no-store\r\nConnection: close\r\n\r\nbad request\n")
        for line in (b"GET /healthz HTTP/<script>x</script>", b"GET /healthz HTTP/1.1 evil",
                     b"BREW /healthz HTTP/evil", b"GET /healthz EVIL/1.1"):
            self.assertEqual(raw(self.addr, line + b"\r\n\r\n"), bad, line)

    def test_limit_in_any_position(self):
        for _ in range(3):
            subprocess.run(["/bin/true"], check=True)
        lib.wait_until("3 events", lambda: len(json.loads(lib.http_get(f"http://{self.addr}/api/v1/events"))) >= 3, 10)
        for q in ("limit=1", "foo=bar&limit=1", "a=1&limit=1&b=2"):
            events = json.loads(lib.http_get(f"http://{self.addr}/api/v1/events?{q}"))
            self.assertEqual(len(events), 1, q)
        self.assertEqual(status(f"http://{self.addr}/api/v1/events?limit=1&limit=2"), 400)


class Tls(unittest.TestCase):
    """HTTPS with basic auth on Debian 12's civetweb + OpenSSL 3, as installed."""

    def test_https_with_basic_auth(self):
        with tempfile.TemporaryDirectory() as tmp:
            sec = lib.WebSecurity(tmp)
            p, addr = lib.start_exporter(BINARY, tmp, security=sec)
            self.addCleanup(p.stop)
            url = f"https://{addr}/metrics"
            self.assertIn("execflow_execs_total", lib.http_get(url, cafile=sec.ca, auth=sec.auth))
            self.assertEqual(status(url, cafile=sec.ca), 401)
            self.assertEqual(status(url, cafile=sec.ca, auth=("prometheus", "nope")), 401)
            self.assertEqual(status(f"https://{addr}/healthz", cafile=sec.ca), 200)
            curl = subprocess.run(["curl", "-sS", "--cacert", sec.ca, "-u", f"prometheus:{sec.password}",
                                   "--tls-max", "1.1", url], capture_output=True, text=True, timeout=30)
            self.assertNotEqual(curl.returncode, 0, "TLS 1.1 must be refused (min_version TLS12)")
            self.assertIn("tls=true basic_auth=true", p.tail())

    def test_without_the_compat_libraries_the_check_says_so(self):
        # A copy of the binary with no lib/execflow beside it: civetweb finds only
        # OpenSSL 3's own libssl.so, which lacks SSL_get_peer_certificate.
        with tempfile.TemporaryDirectory() as tmp:
            sec = lib.WebSecurity(tmp)
            os.mkdir(os.path.join(tmp, "bin"))
            copy = os.path.join(tmp, "bin", "execflow_exporter")
            shutil.copy(BINARY, copy)
            r = subprocess.run([copy, f"--config.file={CONFIG}", f"--web.listen-address=127.0.0.1:{lib.free_port()}",
                                f"--web.config.file={sec.web_config}"], capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("TLS: civetweb could not load OpenSSL, and execflow's compatibility libraries "
                          f"(libssl.so, libcrypto.so) are not in {tmp}/bin/../lib/execflow, {tmp}/bin/lib/execflow",
                          r.stderr)


class Capabilities(unittest.TestCase):
    """No capability left while serving; what a non-root start with CAP_BPF+CAP_PERFMON gets."""

    NONE = ("0000000000000000", "0000000000000000")

    def start(self, tmp, config_text=None, wrap=(), ready_path="/readyz"):
        # A non-root user may not reach the build tree: binary and config go to tmp.
        os.chmod(tmp, 0o755)
        binary = os.path.join(tmp, "execflow_exporter")
        shutil.copy(BINARY, binary)
        config = os.path.join(tmp, "execflow.yaml")
        with open(config, "w") as f:
            if config_text is None:
                with open(CONFIG) as default:
                    config_text = default.read()
            f.write(config_text)
        os.chmod(config, 0o644)
        p, addr = lib.start_exporter(binary, tmp, config=config, wrap=wrap, ready_path=ready_path)
        self.addCleanup(p.stop)
        return p, addr

    def test_root_keeps_nothing_while_serving(self):
        for text in (None, "bpf:\n  run_time_stats: true\n"):
            with tempfile.TemporaryDirectory() as tmp:
                p, addr = self.start(tmp, text)
                self.assertEqual(thread_caps(p.proc.pid), {self.NONE})
                metrics = lib.http_get(f"http://{addr}/metrics")
                self.assertIn('execflow_capabilities{effective="",permitted=""} 1', metrics)
                with open(f"/proc/{p.proc.pid}/status") as f:
                    self.assertIn("NoNewPrivs:\t1", f.read())
                self.assertIn("capabilities: all dropped after attach", p.tail())
                if text:  # the stats fd outlived the capability that opened it
                    for _ in range(20):
                        subprocess.run(["/bin/true"], check=True)
                    runs = metric_line(lib.http_get(f"http://{addr}/metrics"),
                                       'execflow_bpf_program_runs_total{program="exec_btf"}')
                    self.assertEqual(len(runs), 1)
                    self.assertGreaterEqual(float(runs[0].split()[-1]), 20)

    def nonroot(self, caps):
        return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                f"--inh-caps=-all,{caps}", f"--ambient-caps=-all,{caps}"]

    def test_non_root_with_cap_bpf_and_cap_perfmon(self):
        with tempfile.TemporaryDirectory() as tmp:
            p, addr = self.start(tmp, wrap=self.nonroot("+bpf,+perfmon"), ready_path="/healthz")
            self.assertEqual(thread_caps(p.proc.pid), {self.NONE})
            uid = 3950000000 + os.getpid() % 10000
            child = os.fork()
            if child == 0:
                os.setgid(uid)
                os.setuid(uid)
                for _ in range(30):
                    subprocess.run(["/bin/true"])
                os._exit(0)
            os.waitpid(child, 0)
            metrics = lib.http_get(f"http://{addr}/metrics")
            self.assertEqual(lib.sample_sum(metrics, "execflow_execs_total", {"uid": uid}), 30)
            self.assertIn('execflow_capabilities{effective="",permitted=""} 1', metrics)
            # The failed-exec tracepoints need tracefs, root-only: said three times.
            self.assertIn('execflow_hook_unavailable{collector="exec",hook="exec failures"} 1', metrics)
            with self.assertRaises(urllib.error.HTTPError) as cm:
                lib.http_get(f"http://{addr}/readyz")
            self.assertEqual(cm.exception.code, 503)
            body = cm.exception.read().decode()
            # This kernel refuses fexit (EPERM) whoever asks; tracefs refuses non-root.
            self.assertIn("exec failures: failed execs are not counted: fexit: load "
                          "execve_exit_fexit,execveat_exit_fexit: Operation not permitted; tracepoint: attach "
                          "tracepoint/syscalls/sys_enter_execve: Permission denied", body)
            self.assertIn("grant CAP_DAC_READ_SEARCH", body)
            self.assertIn("level=warning msg=\"exec failures: failed execs are not counted", p.tail())

    def test_non_root_choices_that_make_it_ready(self):
        with tempfile.TemporaryDirectory() as tmp:
            # Said explicitly: no warning, ready (pinning off too: a user without
            # CAP_DAC_OVERRIDE cannot write root's /sys/fs/bpf, which is a warning).
            p, addr = self.start(tmp, "exec:\n  failures_hook: \"off\"\nbpf:\n  pin_path: \"off\"\n",
                                 wrap=self.nonroot("+bpf,+perfmon"))
            self.assertNotIn("hook_unavailable", lib.http_get(f"http://{addr}/metrics"))
            self.assertNotIn("warning", p.tail())
        with tempfile.TemporaryDirectory() as tmp:
            # With the privilege tracefs needs, the hook attaches; all dropped after.
            p, addr = self.start(tmp, wrap=self.nonroot("+bpf,+perfmon,+dac_read_search"))
            self.assertEqual(thread_caps(p.proc.pid), {self.NONE})
            self.assertIn("attached exec program=execve_exit_tp", p.tail(100))


class EventsFile(unittest.TestCase):
    def test_modes_under_umask_000(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "log", "execflow", "events.jsonl")
            config = os.path.join(tmp, "execflow.yaml")
            with open(config, "w") as f:
                f.write(f"events:\n  output: file\n  file:\n    path: {path}\n    max_size_bytes: 4096\n    max_files: 2\n")
            old = os.umask(0)
            try:
                p, _ = lib.start_exporter(BINARY, tmp, config=config)
            finally:
                os.umask(old)
            self.addCleanup(p.stop)
            for _ in range(40):  # ~12 KiB of events: rotated twice
                subprocess.run(["/bin/true"], check=True)
            rotated = os.path.join(tmp, "log", "execflow", "events.1.jsonl")
            lib.wait_until("a rotated events file", lambda: os.path.exists(rotated), 10)
            for d in (os.path.join(tmp, "log"), os.path.dirname(path)):
                self.assertEqual(oct(os.stat(d).st_mode & 0o7777), "0o750", d)
            for f in (path, rotated):
                self.assertEqual(oct(os.stat(f).st_mode & 0o7777), "0o640", f)


if __name__ == "__main__":
    lib.stop_on_sigterm()
    BINARY = lib.exporter_binary(sys.argv)
    if shutil.which("setpriv") is None or shutil.which("openssl") is None:
        lib.skip_or_fail("setpriv (util-linux) and openssl are needed")
    unittest.main(argv=[sys.argv[0], "-v"])
