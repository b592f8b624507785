"""Shared pieces of the end-to-end tests (python3 standard library only).

- reading the Grafana dashboards and every query in them;
- substituting Grafana template variables;
- a PromQL lexer that finds the metric names and label names a query uses;
- starting execflow_exporter and Prometheus on free loopback ports, and stopping them;
- the skip rule: a missing prerequisite is a skip (exit 77) except under CI=true, where it
  is a failure.
"""

import ast
import contextlib
import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DASHBOARD_DIR = os.path.join(REPO, "dashboards")
PROMETHEUS_DIR = os.path.join(REPO, "deploy", "prometheus")
SKIP = 77
DATASOURCE = "${datasource}"

# The metric contract: sample names as they appear in the exposition, with their labels
# (job and instance are added by Prometheus).
METRICS = {
    "execflow_execs_total": {"uid", "namespace", "pod", "container"},
    "execflow_exec_failures_total": {"uid", "errno", "namespace", "pod", "container"},
    "execflow_exec_events_total": set(),
    "execflow_exec_events_dropped_total": set(),
    "execflow_tcp_sent_bytes_total": {"saddr", "sport", "daddr", "dport", "port", "direction", "namespace", "pod",
                                      "container"},
    "execflow_tcp_received_bytes_total": {"saddr", "sport", "daddr", "dport", "port", "direction", "namespace", "pod",
                                          "container"},
    "execflow_tcp_sendmsg_bytes_bucket": {"le"},
    "execflow_tcp_sendmsg_bytes_sum": set(),
    "execflow_tcp_sendmsg_bytes_count": set(),
    "execflow_tcp_flows": set(),
    "execflow_tcp_folded_flows": set(),
    "execflow_tcp_flows_closed_total": set(),
    "execflow_tcp_close_events_dropped_total": set(),
    "execflow_tcp_sends_uncounted_total": {"reason"},
    "execflow_tcp_receives_uncounted_total": {"reason"},
    "execflow_events_transport_info": {"transport"},
    "execflow_workload_unresolved_cgroups": set(),
    "execflow_scrape_errors_total": {"collector"},
    "execflow_build_info": {"version", "revision"},
    "execflow_bpf_program_info": {"program", "hook", "attach_type"},
    "execflow_bpf_program_run_seconds_total": {"program"},
    "execflow_bpf_program_runs_total": {"program"},
    "execflow_bpf_program_misses_total": {"program"},
    "execflow_bpf_map_entries": {"map"},
    "execflow_bpf_map_capacity": {"map"},
    "execflow_bpf_map_update_failures_total": {"map"},
    "execflow_scrape_duration_seconds": {"collector"},
    "up": set(),
}
TARGET_LABELS = {"job", "instance"}
# Flow labels that one of the two label sets leaves out (per flow: sport, dport; per
# service edge: port, direction): dashboards group by all four to work with both.
FLOW_LABEL_SET_ONLY = {"sport", "dport", "port", "direction"}


def recorded_metrics():
    """{name: labels} of the recording rules in deploy/prometheus/rules.yml. Each sums by
    job and instance (tests/e2e/dashboards_mixin.py checks), so it has no label of its own."""
    with open(os.path.join(PROMETHEUS_DIR, "rules.yml"), encoding="utf-8") as f:
        return {name: set() for name in re.findall(r'^\s*(?:- )?record:\s*"?([\w:]+)', f.read(), re.M)}


def log(*args):
    print(*args, flush=True)


class Results:
    """Counts checks; prints every failure (and every pass when verbose) as it happens."""

    def __init__(self, name, verbose=False):
        self.name, self.verbose = name, verbose
        self.passed, self.failed = 0, []

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
            if self.verbose:
                log(f"PASS: {what}")
        else:
            self.failed.append(what)
            log(f"FAIL: {what}" + (f" -- {detail}" if detail else ""))
        return bool(ok)

    def finish(self):
        """Prints the closing line and returns the exit code."""
        log(f"{self.name}: {self.passed} passed, {len(self.failed)} failed")
        return 1 if self.failed else 0


def bpf_prog_ids(pid):
    """The ids of the BPF programs process `pid` holds (its fds' fdinfo): other
    processes on a shared machine load programs of the same names."""
    ids = set()
    d = f"/proc/{pid}/fdinfo"
    for fd in os.listdir(d):
        try:
            with open(os.path.join(d, fd)) as f:
                ids.update(int(l.split()[1]) for l in f if l.startswith("prog_id:"))
        except OSError:
            pass  # closed meanwhile
    return ids


def bpf_prog_sizes(proginfo, ids):
    """{id: (verified insns, xlated bytes, jited bytes)} of these programs, from
    `execflow_bench_load proginfo` (the binary `proginfo`); verified insns is 0 before
    5.16, which does not report it. Raises RuntimeError if it fails."""
    if not ids:
        return {}
    r = subprocess.run([proginfo, "proginfo", *map(str, sorted(ids))], capture_output=True, text=True,
                       timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"proginfo: {r.stderr.strip()}")
    out = {}
    for line in r.stdout.splitlines():
        f = {k: int(v) for k, v in (kv.split("=") for kv in line.split())}
        out[f["id"]] = (f["verified_insns"], f["xlated"], f["jited"])
    return out


def skip_or_fail(reason):
    """A prerequisite is missing: fail under CI=true, otherwise skip."""
    if os.environ.get("CI") == "true":
        log(f"FAIL: {reason} (a skip is a failure under CI=true)")
        sys.exit(1)
    log(f"SKIP: {reason}")
    sys.exit(SKIP)


def need_tool(name, package="prometheus"):
    path = shutil.which(name)
    if not path:
        skip_or_fail(f"{name} not found (apt-get install {package})")
    return path


# ------------------------------------------------------------------ dashboards

def dashboard_paths():
    return sorted(glob.glob(os.path.join(DASHBOARD_DIR, "*.json")))


def load_dashboards():
    """[(path, dashboard)] ; raises ValueError naming the file on invalid JSON."""
    out = []
    for path in dashboard_paths():
        with open(path, encoding="utf-8") as f:
            try:
                out.append((path, json.load(f)))
            except json.JSONDecodeError as e:
                raise ValueError(f"{os.path.relpath(path, REPO)}: invalid JSON: {e}") from e
    return out


def iter_panels(dashboard):
    """Every panel, rows included, descending into collapsed rows."""
    for p in dashboard.get("panels", []):
        yield p
        yield from p.get("panels", [])


def panel_queries(dashboard):
    """(panel, target) for every PromQL target of every panel."""
    for p in iter_panels(dashboard):
        for t in p.get("targets", []):
            if t.get("expr"):
                yield p, t


def variable_queries(dashboard):
    """(variable, query text) for every query-type template variable."""
    for v in dashboard.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        query = v.get("query")
        if isinstance(query, dict):
            query = query.get("query", "")
        yield v, query or v.get("definition", "")


LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(?P<expr>.*),\s*)?(?P<label>[a-zA-Z_]\w*)\s*\)\s*$", re.S)


def split_label_values(query):
    """label_values(expr, label) -> (expr or None, label); raises on other variable queries."""
    m = LABEL_VALUES.match(query)
    if not m:
        raise ValueError(f"unsupported variable query: {query!r}")
    return m.group("expr"), m.group("label")


# Grafana's built-in variables and what the tests substitute for them.
GRAFANA_BUILTINS = {
    "__rate_interval": "15s",
    "__interval": "2s",
    "__interval_ms": "2000",
    "__range": "1m",
    "__range_s": "60",
    "__range_ms": "60000",
}

# The workload variables (exec activity, network flows) and the value their "All" stands
# for: it matches the host's series, which have empty workload labels.
WORKLOAD_VARIABLES = {"namespace": ".*", "pod": ".*"}


def variable_values(job, instance):
    """Values of every dashboard variable for substitute(): the job, the instance, and
    "All" for the workload variables."""
    return {"job": job, "instance": instance, **WORKLOAD_VARIABLES}


_VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)(?::[^\]]*)?\]\]")


def substitute(expr, values):
    """Replaces ${var}, ${var:fmt}, $var and [[var]]; unknown variables raise KeyError."""
    merged = dict(GRAFANA_BUILTINS)
    merged.update(values)

    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name not in merged:
            raise KeyError(f"unknown template variable ${name} in {expr!r}")
        return merged[name]

    return _VARIABLE.sub(repl, expr)


def variables_used(expr):
    return {m.group(1) or m.group(2) or m.group(3) for m in _VARIABLE.finditer(expr)}


# ------------------------------------------------------------------ PromQL lexer

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<number>(?:0[xX][0-9a-fA-F]+|\d[\w.]*|\.\d[\w.]*))
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^=<>(){}\[\],@])
""", re.X)

AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
                "count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio"}
CLAUSES = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"}


class PromQLError(ValueError):
    pass


def tokenize(expr):
    tokens, pos = [], 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m:
            raise PromQLError(f"cannot read {expr[pos:pos + 20]!r} at offset {pos} of {expr!r}")
        pos = m.end()
        kind = m.lastgroup
        if kind not in ("ws", "comment"):
            tokens.append((kind, m.group(kind)))
    return tokens


def _unquote(s):
    if s[0] == "`":
        return s[1:-1]
    return ast.literal_eval(s)  # Go's and Python's escapes agree on what PromQL allows


def _matching(tokens, i, open_, close):
    """Index of the token closing the bracket opened at tokens[i]."""
    depth = 0
    for j in range(i, len(tokens)):
        if tokens[j] == ("op", open_):
            depth += 1
        elif tokens[j] == ("op", close):
            depth -= 1
            if depth == 0:
                return j
    raise PromQLError(f"unbalanced {open_!r}")


def _matchers(tokens):
    """[(label, op, value)] from the tokens inside {...}."""
    out, i = [], 0
    while i < len(tokens):
        if tokens[i] == ("op", ","):
            i += 1
            continue
        if i + 2 >= len(tokens) or tokens[i][0] != "ident" or tokens[i + 2][0] != "string":
            raise PromQLError(f"bad label matcher near {tokens[i:i + 3]}")
        out.append((tokens[i][1], tokens[i + 1][1], _unquote(tokens[i + 2][1])))
        i += 3
    return out


def analyze(expr):
    """What a PromQL expression refers to.

    Returns (selectors, grouping_labels): selectors is [(metric name, [(label, op, value)])]
    for every vector selector; grouping_labels holds the label names of by/without/on/
    ignoring/group_left/group_right clauses. Function and aggregation names, keywords,
    numbers, durations, strings and range/subquery brackets are not metric names.
    """
    tokens = tokenize(expr)
    selectors, grouping = [], set()
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else (None, None)
        if (kind, text) == ("op", "["):
            i = _matching(tokens, i, "[", "]") + 1
        elif (kind, text) == ("op", "{"):
            end = _matching(tokens, i, "{", "}")
            matchers = _matchers(tokens[i + 1:end])
            names = [v for (label, op, v) in matchers if label == "__name__" and op == "="]
            if not names:
                raise PromQLError(f"selector without a metric name in {expr!r}")
            selectors.append((names[0], [m for m in matchers if m[0] != "__name__"]))
            i = end + 1
        elif kind == "ident":
            low = text.lower()
            if low in CLAUSES:
                if nxt == ("op", "("):
                    end = _matching(tokens, i + 1, "(", ")")
                    grouping.update(t for k, t in tokens[i + 2:end] if k == "ident")
                    i = end + 1
                else:
                    i += 1
            elif low in KEYWORDS or low in AGGREGATIONS or nxt == ("op", "("):
                i += 1
            else:
                matchers = []
                i += 1
                if nxt == ("op", "{"):
                    end = _matching(tokens, i, "{", "}")
                    matchers = _matchers(tokens[i + 1:end])
                    i = end + 1
                selectors.append((text, matchers))
        else:
            i += 1
    return selectors, grouping


def metric_names(expr):
    return {name for name, _ in analyze(expr)[0]}


LEGEND_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")


# ------------------------------------------------------------------ processes

def cgroup2_root():
    """Where the whole cgroup v2 hierarchy is mounted (its root folder is inode 1)."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            point, fstype = fields[4], fields[fields.index("-") + 1]
            if fstype == "cgroup2" and os.stat(point).st_ino == 1:
                return point
    raise RuntimeError("no cgroup v2 hierarchy mounted")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5, cafile=None, auth=None):
    """GET url; https is verified against cafile; auth is (user, password) for basic auth."""
    import base64
    import ssl
    req = urllib.request.Request(url)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    context = ssl.create_default_context(cafile=cafile) if url.startswith("https:") else None
    with urllib.request.urlopen(req, timeout=timeout, context=context) as r:
        return r.read().decode("utf-8")


def bcrypt(password, cost):
    """A bcrypt hash of `password` ("$2b$", 2**cost rounds) from libcrypt, the library
    behind crypt(3) on every Debian system (Python 3.13 has no crypt module)."""
    import ctypes
    lib = ctypes.CDLL("libcrypt.so.1")
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    salt = lib.crypt_gensalt(b"$2b$", cost, None, 0)
    hashed = lib.crypt(password.encode(), salt) if salt else None
    if not hashed or not hashed.startswith(b"$2b$"):
        raise RuntimeError(f"libcrypt made no bcrypt hash (salt {salt!r})")
    return hashed.decode()


class WebSecurity:
    """A CA, a server certificate for 127.0.0.1 and a web config file with TLS and one
    basic auth user (bcrypt, cost 10 as htpasswd -B writes it), made in `tmp`."""

    USER = "prometheus"

    def __init__(self, tmp, password="s3cret-e2e"):
        self.password = password
        self.ca = os.path.join(tmp, "ca.crt")
        self.cert = os.path.join(tmp, "server.crt")
        self.key = os.path.join(tmp, "server.key")
        self.password_file = os.path.join(tmp, "password")

        def run(*args):
            subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60, cwd=tmp)
        run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
            "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=execflow-e2e-ca")
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
        with open(os.path.join(tmp, "san.ext"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1\n")
        run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-out", "server.crt", "-extfile", "san.ext")
        with open(self.password_file, "w") as f:
            f.write(password)
        self.web_config = os.path.join(tmp, "web.yml")
        with open(self.web_config, "w") as f:
            f.write("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
                    f"basic_auth_users:\n  {self.USER}: '{bcrypt(password, 10)}'\n")

    @property
    def auth(self):
        return (self.USER, self.password)

    def prometheus_job(self):
        """What the Prometheus job needs to scrape this exporter."""
        return (f"    scheme: https\n    tls_config:\n      ca_file: {self.ca}\n"
                f"    basic_auth:\n      username: {self.USER}\n      password_file: {self.password_file}\n")


def wait_until(what, fn, timeout, interval=0.2):
    """Calls fn until it returns a true value; raises TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = fn()
            if value:
                return value
        except Exception as e:  # not ready yet: remember why
            last = e
        time.sleep(interval)
    raise TimeoutError(f"{what}: not within {timeout}s" + (f" (last error: {last})" if last else ""))


def _die_with_parent():
    """In the child before exec: SIGKILL it if the test dies first (PR_SET_PDEATHSIG)."""
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)


def stop_on_sigterm():
    """SIGTERM (a CTest timeout, Ctrl-C in a wrapper) unwinds through the finally blocks."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


class Process:
    """A child process whose output goes to a file, stopped with SIGTERM then SIGKILL."""

    def __init__(self, name, argv, workdir):
        self.name = name
        self.log_path = os.path.join(workdir, f"{name}.log")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)

    def check_running(self):
        rc = self.proc.poll()
        if rc is not None:
            raise RuntimeError(f"{self.name} exited with {rc}:\n{self.tail()}")
        return True

    def tail(self, lines=30):
        if not self._log.closed:
            self._log.flush()
        with open(self.log_path, "rb") as f:
            return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-lines:])

    def stop(self, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log(f"{self.name} ignored SIGTERM for {timeout}s; killing it")
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        self._log.close()
        return self.proc.returncode


def exporter_binary(argv):
    """The binary from argv[1] (CTest passes $<TARGET_FILE:...>), else build/."""
    path = argv[1] if len(argv) > 1 else os.path.join(REPO, "build", "execflow_exporter")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        skip_or_fail(f"exporter binary {path} not built (cmake -S . -B build && cmake --build build)")
    if os.geteuid() != 0:
        skip_or_fail("the exporter loads BPF programs and must run as root")
    return path


@contextlib.contextmanager
def workdir(prefix):
    path = tempfile.mkdtemp(prefix=prefix)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def start_exporter(binary, tmp, config=None, extra_args=(), ready_timeout=30, security=None,
                   ready_path="/readyz", wrap=()):
    """Starts the exporter on a free loopback port and waits for ready_path to answer 200;
    with a WebSecurity, over HTTPS with its web config. `wrap` runs it through a command
    (setpriv ...).

    Returns (process, host:port); the caller stops the process."""
    address = f"127.0.0.1:{free_port()}"
    config = config or os.path.join(REPO, "config", "execflow.yaml")
    web = [f"--web.config.file={security.web_config}"] if security else []
    proc = Process("exporter", [*wrap, binary, f"--config.file={config}",
                                f"--web.listen-address={address}", *web, *extra_args], tmp)
    scheme = "https" if security else "http"

    def ready():
        proc.check_running()
        http_get(f"{scheme}://{address}{ready_path}", timeout=2, cafile=security.ca if security else None)
        return True
    try:
        wait_until("exporter /readyz", ready, ready_timeout)
    except TimeoutError as e:
        proc.stop()
        raise RuntimeError(f"{e}\n{proc.tail()}") from None
    return proc, address


@contextlib.contextmanager
def running_exporter(binary, tmp, config=None, ready_timeout=30, security=None):
    """Starts the exporter on a free loopback port; yields its host:port."""
    proc, address = start_exporter(binary, tmp, config, ready_timeout=ready_timeout, security=security)
    try:
        yield address
    finally:
        rc = proc.stop()
        if rc not in (0, -signal.SIGTERM):
            log(f"exporter exited with {rc} on SIGTERM:\n{proc.tail()}")


def scrape_values(text):
    """[(sample name, labels dict, value)] from the text exposition format."""
    out = []
    line_re = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)")
    label_re = re.compile(r'([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"')
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = line_re.match(line)
        if not m:
            raise ValueError(f"cannot parse exposition line {line!r}")
        out.append((m.group(1), dict(label_re.findall(m.group(3) or "")), float(m.group(4))))
    return out


def sample_sum(text, name, labels):
    """The sum of the samples of `name` whose labels include `labels` (a dict): other
    labels, such as the empty workload labels on the host, may be there too."""
    return sum(v for n, l, v in scrape_values(text)
               if n == name and all(l.get(k) == str(x) for k, x in labels.items()))


def scrape_samples(text):
    """{sample name: [labels dict]} from the text exposition format."""
    samples = {}
    for name, labels, _ in scrape_values(text):
        samples.setdefault(name, []).append(labels)
    return samples


class Prometheus:
    """Debian's Prometheus server on a free loopback port, with a temporary copy of
    deploy/prometheus/prometheus.yml (and alerts.yml, rules.yml) pointed at `target`;
    `job_extra` (WebSecurity.prometheus_job(): https, CA, basic auth) is added to the job."""

    JOB = "execflow"

    def __init__(self, tmp, target, scrape_interval="1s", job_extra=""):
        self.binary = need_tool("prometheus")
        self.tmp = tmp
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = os.path.join(tmp, "prometheus.yml")
        text = open(os.path.join(PROMETHEUS_DIR, "prometheus.yml"), encoding="utf-8").read()
        for old, new in [("127.0.0.1:9741", target),
                         ("scrape_interval: 15s", f"scrape_interval: {scrape_interval}"),
                         ("evaluation_interval: 15s", f"evaluation_interval: {scrape_interval}"),
                         ("scrape_timeout: 10s", f"scrape_timeout: {scrape_interval}"),
                         ("    metrics_path: /metrics\n", "    metrics_path: /metrics\n" + job_extra)]:
            if text.count(old) != 1:
                raise RuntimeError(f"deploy/prometheus/prometheus.yml no longer has exactly one {old!r}")
            text = text.replace(old, new)
        if f"job_name: {self.JOB}" not in text:
            raise RuntimeError(f"deploy/prometheus/prometheus.yml has no job {self.JOB!r}")
        with open(self.config, "w", encoding="utf-8") as f:
            f.write(text)
        for rules in ("alerts.yml", "rules.yml"):
            shutil.copy(os.path.join(PROMETHEUS_DIR, rules), tmp)
        self.proc = None

    def start(self, ready_timeout=30):
        self.proc = Process("prometheus", [
            self.binary, f"--config.file={self.config}",
            f"--storage.tsdb.path={os.path.join(self.tmp, 'data')}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn"], self.tmp)

        def ready():
            self.proc.check_running()
            http_get(f"{self.url}/-/ready", timeout=2)
            return True
        try:
            wait_until("prometheus /-/ready", ready, ready_timeout)
        except TimeoutError as e:
            raise RuntimeError(f"{e}\n{self.proc.tail()}") from None

    def stop(self):
        if self.proc:
            self.proc.stop()

    def api(self, path, **params):
        url = f"{self.url}/api/v1/{path}?" + urllib.parse.urlencode(params, doseq=True)
        try:
            body = http_get(url, timeout=10)
        except urllib.error.HTTPError as e:
            body = e.read().decode("utf-8", "replace")
        reply = json.loads(body)
        if reply.get("status") != "success":
            raise RuntimeError(f"{path} {params}: {reply.get('errorType')}: {reply.get('error')}")
        return reply["data"]

    def query(self, expr):
        return self.api("query", query=expr)["result"]

    def query_range(self, expr, seconds, step="1s"):
        end = time.time()
        return self.api("query_range", query=expr, start=f"{end - seconds:.3f}",
                        end=f"{end:.3f}", step=step)["result"]


# ------------------------------------------------------------------ activity

class Activity:
    """Exec, failed-exec and loopback TCP activity from background threads, so that
    counters move while Prometheus scrapes. Use as a context manager.

    Each round runs /bin/true 20 times, fails one exec with ENOENT and one with EACCES,
    sends SIZES over a new connection and SIZES over one connection kept open for the
    whole run (a flow that lives across scrapes). The counts of what was done are kept,
    so a test can assert the exporter counted at least that much."""

    SIZES = (1, 100, 1500, 65536, 1 << 20)
    EXECS_PER_ROUND = 20

    def __init__(self, tmp, period=0.2):
        import threading
        self.threading = threading
        self.period = period
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.errors = []
        self.rounds = self.execs = self.enoent = self.eacces = self.bytes_sent = 0
        self.persistent_bytes = 0
        self.paused = threading.Event()
        self.round_lock = threading.Lock()  # held for a whole round
        self.noexec = os.path.join(tmp, "not-executable")
        with open(self.noexec, "w") as f:
            f.write("#!/bin/sh\n")
        os.chmod(self.noexec, 0o644)
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.server.settimeout(0.5)
        self.port = self.server.getsockname()[1]
        self.persistent = None
        self.threads = [threading.Thread(target=self._serve, daemon=True),
                        threading.Thread(target=self._generate, daemon=True)]

    def __enter__(self):
        self.persistent = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=15)
        self.persistent.close()
        self.server.close()

    def pause(self):
        """Stops after the current round, keeping the persistent connection open; returns
        what was done (nothing more is done after it)."""
        self.paused.set()
        with self.round_lock, self.lock:
            return {"rounds": self.rounds, "execs": self.execs, "ENOENT": self.enoent,
                    "EACCES": self.eacces, "bytes": self.bytes_sent,
                    "persistent bytes": self.persistent_bytes,
                    "persistent flow": self.persistent.getsockname()[1]}

    def _serve(self):
        while not self.stop_event.is_set():
            try:
                conn, _ = self.server.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    def _drain(self, conn):
        with conn:
            conn.settimeout(1)
            while not self.stop_event.is_set():
                try:
                    if not conn.recv(1 << 16):
                        return
                except socket.timeout:
                    continue
                except OSError:
                    return

    def one_round(self):
        for _ in range(self.EXECS_PER_ROUND):
            subprocess.run(["/bin/true"], check=True, timeout=10)
        with self.lock:
            self.execs += self.EXECS_PER_ROUND
        for path, error, counter in (("/nonexistent/execflow-e2e", FileNotFoundError, "enoent"),
                                     (self.noexec, PermissionError, "eacces")):
            try:
                subprocess.run([path], timeout=10)
                raise RuntimeError(f"exec of {path} did not fail")
            except error:
                with self.lock:
                    setattr(self, counter, getattr(self, counter) + 1)
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as c:
            for size in self.SIZES:
                c.sendall(b"x" * size)
        for size in self.SIZES:
            self.persistent.sendall(b"y" * size)
        with self.lock:
            self.bytes_sent += 2 * sum(self.SIZES)
            self.persistent_bytes += sum(self.SIZES)
            self.rounds += 1

    def _generate(self):
        while not self.stop_event.is_set() and not self.paused.is_set():
            try:
                with self.round_lock:
                    if self.paused.is_set():
                        return
                    self.one_round()
            except Exception as e:  # reported by the test, not swallowed
                self.errors.append(repr(e))
                return
            self.stop_event.wait(self.period)
