#!/usr/bin/env python3
"""Every dashboard query against a real Prometheus server scraping a real exporter.

1. Starts execflow_exporter (config/execflow.yaml with BPF run-time stats on) serving
   HTTPS with basic auth (--web.config.file: a certificate from a throwaway CA, one bcrypt
   user), and Debian's Prometheus, both on free 127.0.0.1 ports; Prometheus gets a
   temporary copy of deploy/prometheus/prometheus.yml, alerts.yml and rules.yml pointed at
   the exporter with scheme https, the CA and the user, scraping and evaluating every
   second (the fleet overview reads recorded series).
2. Makes exec, failed-exec (ENOENT, EACCES) and loopback TCP activity in the background.
3. Waits (at most 90 s) for 8 scrapes.
4. Checks: up is 1; the variables' label_values queries list the job and instance; every
   query of every panel of every dashboard, with template variables substituted the way
   Grafana does, returns at least one series (range targets through query_range, instant
   ones through query); the activity shows in the numbers: the bytes of the test's own
   long-lived TCP flow exactly, and at least the test's execs, ENOENT and EACCES
   failures, TCP bytes and send calls in the node-wide counters that other processes
   move too; every alert and recording rule evaluates without error and no alert is
   pending or firing on this healthy node.
Everything started is stopped on exit, on failure too.
Usage: dashboards_e2e.py [path/to/execflow_exporter]
"""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_lib as lib  # noqa: E402

SCRAPES = 8
RANGE_SECONDS = 30


def exporter_config(tmp):
    """config/execflow.yaml with BPF run-time stats on, so the run-time panels have values."""
    text = open(os.path.join(lib.REPO, "config", "execflow.yaml"), encoding="utf-8").read()
    text = re.sub(r"(?m)^(\s*run_time_stats:\s*)false\b", r"\1true", text)
    path = os.path.join(tmp, "execflow.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def grafana_values(target):
    # Grafana writes a multi-value variable as a regex with its values escaped; the
    # workload variables stay on "All" (the host's series have no workload labels).
    return lib.variable_values(lib.Prometheus.JOB, re.escape(target).replace("\\", "\\\\"))


def value(result):
    return float(result[0]["value"][1]) if result else None


def check_dashboards(r, prom, target):
    values = grafana_values(target)
    expected_labels = {"job": lib.Prometheus.JOB, "instance": target}
    for path, dash in lib.load_dashboards():
        name = os.path.basename(path)
        for v, query in lib.variable_queries(dash):
            expr, label = lib.split_label_values(query)
            got = {s["metric"].get(label) for s in prom.query(lib.substitute(expr, values))}
            r.check(expected_labels.get(label) in got,
                    f"{name} variable {v['name']}: label_values lists {expected_labels.get(label)!r}",
                    f"got {sorted(x for x in got if x)}")
        for p, t in lib.panel_queries(dash):
            where = f"{name} panel {p['id']} {p.get('title')!r} query {t.get('refId')}"
            expr = lib.substitute(t["expr"], values)
            try:
                if t.get("instant") and not t.get("range"):
                    result = prom.query(expr)
                else:
                    result = prom.query_range(expr, RANGE_SECONDS)
                    result = [s for s in result if s.get("values")]
            except Exception as e:
                r.check(False, where, f"{expr}: {e}")
                continue
            r.check(len(result) > 0, f"{where}: {len(result)} series", f"no series for {expr}")


def check_numbers(r, prom, target, done):
    """What the activity did shows in Prometheus: exactly for the one flow only the test
    uses, at least as much for node-wide counters that other processes also move."""
    sel = f'job="{lib.Prometheus.JOB}", instance="{target}"'
    uid = os.getuid()  # execs are counted per real UID

    def at_least(expr, want, what):
        got = value(prom.query(expr))
        r.check(got is not None and got >= want, f"{what}: {got} >= {want}", expr)

    r.check(value(prom.query(f"up{{{sel}}}")) == 1, "up is 1")
    # Summed: other workloads of this uid (containers on the node) are series of their own.
    at_least(f'sum(execflow_execs_total{{{sel}, uid="{uid}"}})', done["execs"], f"execs of uid {uid}")
    for errno in ("ENOENT", "EACCES"):
        at_least(f'sum(execflow_exec_failures_total{{{sel}, uid="{uid}", errno="{errno}"}})', done[errno],
                 f"failed execs of uid {uid} with {errno}")
    at_least(f"execflow_tcp_sendmsg_bytes_sum{{{sel}}}", done["bytes"], "TCP bytes sent")
    at_least(f'execflow_tcp_sendmsg_bytes_bucket{{{sel}, le="+Inf"}}',
             2 * len(lib.Activity.SIZES) * done["rounds"], "tcp_sendmsg calls")
    # config/execflow.yaml keeps one series per service edge: every connection the
    # activity made to its server (the long-lived one and one per round) is in it.
    edge = f'execflow_tcp_sent_bytes_total{{{sel}, port="{done["port"]}", direction="out"}}'
    got = value(prom.query(f"sum({edge})"))
    r.check(got == done["bytes"], f"bytes the activity sent to its server: {got} == {done['bytes']}", edge)
    got = value(prom.query(f"count({edge})"))
    r.check(got == 1, f"one series for the activity's {done['rounds'] + 1} connections: {got}", edge)


def wait_scrape_after(prom, t):
    """Waits (bounded) for a scrape that started after time `t`: it reads the maps as
    they were then or later."""
    def scraped():
        ts = value(prom.query(f'timestamp(up{{job="{lib.Prometheus.JOB}"}})'))
        return ts is not None and ts > t
    lib.wait_until("a scrape after the activity", scraped, 30, interval=0.3)


def check_rules(r, prom):
    rules = [rule for g in prom.api("rules")["groups"] for rule in g["rules"]]
    alerts = [rule for rule in rules if rule["type"] == "alerting"]
    recorded = sorted(rule["name"] for rule in rules if rule["type"] == "recording")
    r.check(len(alerts) > 0, f"Prometheus loaded {len(alerts)} alert rules from alerts.yml")
    r.check(recorded == sorted(lib.recorded_metrics()),
            f"Prometheus loaded the {len(recorded)} recording rules of rules.yml", str(recorded))
    for rule in rules:
        r.check(rule.get("health") == "ok", f"{rule['type']} rule {rule['name']} evaluates",
                f"health {rule.get('health')}: {rule.get('lastError')}")
    for rule in alerts:
        r.check(rule.get("state", "inactive") == "inactive", f"alert {rule['name']} is quiet on a healthy node",
                f"state {rule.get('state')}: {rule.get('alerts')}")


def main():
    lib.stop_on_sigterm()
    binary = lib.exporter_binary(sys.argv)
    lib.need_tool("prometheus")
    r = lib.Results("dashboards_e2e", verbose=True)
    started = time.monotonic()
    with lib.workdir("execflow-e2e-") as tmp:
        security = lib.WebSecurity(tmp)
        with lib.running_exporter(binary, tmp, config=exporter_config(tmp), security=security) as target:
            run(r, tmp, target, security, started)
    lib.log(f"took {time.monotonic() - started:.1f}s")
    if r.failed:
        lib.log(f"{len(r.failed)} failed:")
        for f in r.failed:
            lib.log(f"  {f}")
    return r.finish()


def run(r, tmp, target, security, started):
    # What Prometheus must not get in without: plain HTTP, no or wrong credentials.
    try:
        lib.http_get(f"http://{target}/metrics", timeout=3)
        r.check(False, "plain HTTP to the HTTPS port is not served")
    except Exception as e:  # not an HTTP answer at all
        r.check(not isinstance(e, lib.urllib.error.HTTPError), "plain HTTP to the HTTPS port is not served", repr(e))
    for auth in (None, ("prometheus", "wrong")):
        try:
            lib.http_get(f"https://{target}/metrics", cafile=security.ca, auth=auth)
            r.check(False, f"https /metrics with credentials {auth}: 401")
        except lib.urllib.error.HTTPError as e:
            r.check(e.code == 401, f"https /metrics with credentials {auth}: 401", str(e.code))
    prom = lib.Prometheus(tmp, target, job_extra=security.prometheus_job())
    try:
        prom.start()
        with lib.Activity(tmp) as activity:
            def scraped():
                if activity.errors:
                    raise RuntimeError(f"generating activity: {activity.errors}")
                n = value(prom.query(f'count_over_time(up{{job="{lib.Prometheus.JOB}"}}[1m])'))
                return n is not None and n >= SCRAPES
            try:
                lib.wait_until(f"{SCRAPES} scrapes", scraped, 90, interval=0.5)
            except (TimeoutError, RuntimeError) as e:
                r.check(False, "Prometheus scraped the exporter", f"{e}\n{prom.proc.tail()}")
                return
            targets = prom.api("targets")["activeTargets"]
            urls = [t["scrapeUrl"] for t in targets if t["labels"].get("job") == lib.Prometheus.JOB]
            r.check(urls == [f"https://{target}/metrics"], f"Prometheus scrapes over HTTPS: {urls}")
            done = activity.pause()
            done["port"] = activity.port
            lib.log(f"{SCRAPES} scrapes after {time.monotonic() - started:.1f}s; activity: {done}")
            wait_scrape_after(prom, time.time())
            check_numbers(r, prom, target, done)
            check_dashboards(r, prom, target)
            check_rules(r, prom)
    finally:
        prom.stop()


if __name__ == "__main__":
    sys.exit(main())
