#!/usr/bin/env python3
"""Static checks of dashboards/*.json and dashboards/provisioning (no exporter needed).

- every dashboard is valid JSON; the four dashboards of the issue are there, with unique
  uids and titles, ids null (importable) and unique panel ids;
- variables: `datasource` (type datasource, Prometheus), `job` and `instance` (label_values
  of execflow_build_info, through ${datasource});
- every panel and every target uses the datasource ${datasource};
- every query reads, through a PromQL lexer, to metric names of the metric contract or of
  the recording rules in deploy/prometheus/rules.yml, with
  label matchers, grouping labels and legend labels that those metrics have; every
  selector filters on job=~"$job" and instance=~"$instance"; ranges are $__rate_interval
  (rate, irate, increase per interval) or $__range (totals over the time range);
- the send-size heatmap reads execflow_tcp_sendmsg_bytes_bucket by le;
- every metric of the contract and every recording rule is shown somewhere;
- the provisioning files point Grafana at the dashboards.
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_lib as lib  # noqa: E402

EXPECTED = {
    "execflow-fleet": "fleet overview",
    "execflow-exec": "exec activity",
    "execflow-network": "network flows",
    "execflow-health": "exporter health",
}
ALLOWED_RANGES = {"$__rate_interval", "$__range"}
RATE_CALL = re.compile(r"\b(i?rate)\s*\(")
RECORDED = lib.recorded_metrics()
KNOWN = {**lib.METRICS, **RECORDED}


def is_our_datasource(ds):
    if isinstance(ds, dict):
        return ds.get("uid") == lib.DATASOURCE and ds.get("type", "prometheus") == "prometheus"
    return ds == lib.DATASOURCE


def call_arguments(expr, start):
    """Text between the '(' ending at `start` and its matching ')'."""
    depth = 0
    for i in range(start - 1, len(expr)):
        if expr[i] == "(":
            depth += 1
        elif expr[i] == ")":
            depth -= 1
            if depth == 0:
                return expr[start:i]
    return expr[start:]


def check_query(c, where, expr, legend, used_metrics, variables):
    unknown = lib.variables_used(expr) - set(variables) - set(lib.GRAFANA_BUILTINS)
    c.check(not unknown, f"{where}: unknown template variables {sorted(unknown)}")
    for rng in re.findall(r"\[([^\]]*)\]", expr):
        c.check(rng in ALLOWED_RANGES, f"{where}: range [{rng}] is neither $__rate_interval nor $__range")
    for m in RATE_CALL.finditer(expr):
        c.check("[$__rate_interval]" in call_arguments(expr, m.end()),
                f"{where}: {m.group(1)}() does not use $__rate_interval")
    try:
        selectors, grouping = lib.analyze(lib.substitute(expr, lib.variable_values("j", "i")))
    except (lib.PromQLError, KeyError) as e:
        c.check(False, f"{where}: {e}")
        return
    c.check(selectors, f"{where}: no metric in {expr!r}")
    available = set(lib.TARGET_LABELS)
    for name, matchers in selectors:
        used_metrics.add(name)
        if not c.check(name in KNOWN, f"{where}: metric {name} is neither in the metric contract nor recorded"):
            continue
        labels = KNOWN[name] | lib.TARGET_LABELS
        available |= labels
        for label, _, _ in matchers:
            c.check(label in labels, f"{where}: {name} has no label {label!r}")
        got = {(label, op) for label, op, _ in matchers}
        c.check(("job", "=~") in got and ("instance", "=~") in got,
                f"{where}: {name} is not filtered by job=~\"$job\" and instance=~\"$instance\"")
    for label in grouping:
        c.check(label in available, f"{where}: groups by {label!r}, which none of its metrics has")
    for label in lib.LEGEND_LABEL.findall(legend or ""):
        c.check(label in available, f"{where}: legend uses {label!r}, which none of its metrics has")
    # The selectors must take the variables, not a fixed value.
    for name in {n for n, _ in selectors}:
        for m in re.finditer(re.escape(name) + r"\{([^}]*)\}", expr):
            body = m.group(1)
            c.check('job=~"$job"' in body and 'instance=~"$instance"' in body,
                    f"{where}: {name}{{{body}}} does not filter on the $job and $instance variables")


def check_variables(c, name, dash, used_metrics):
    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    ds = variables.get("datasource", {})
    c.check(ds.get("type") == "datasource" and ds.get("query") == "prometheus",
            f"{name}: no `datasource` variable of type datasource for Prometheus")
    for var, label in (("job", "job"), ("instance", "instance")):
        v = variables.get(var)
        if not c.check(v and v.get("type") == "query", f"{name}: no query variable `{var}`"):
            continue
        c.check(is_our_datasource(v.get("datasource")), f"{name}: variable `{var}` does not use ${{datasource}}")
    for v, query in lib.variable_queries(dash):
        where = f"{name}: variable `{v.get('name')}`"
        try:
            expr, label = lib.split_label_values(query)
        except ValueError as e:
            c.check(False, f"{where}: {e}")
            continue
        source = "execflow_execs_total" if v.get("name") in lib.WORKLOAD_VARIABLES else "execflow_build_info"
        c.check(expr is not None and source in expr, f"{where}: should take its values from {source}")
        if expr:
            selectors, _ = lib.analyze(lib.substitute(expr, lib.variable_values("j", "i")))
            for metric, _ in selectors:
                used_metrics.add(metric)
                c.check(metric in lib.METRICS, f"{where}: metric {metric} is not in the metric contract")
        c.check(label == v.get("name"), f"{where}: lists label {label!r}")


def check_provisioning(c):
    base = os.path.join(lib.DASHBOARD_DIR, "provisioning")
    ds = os.path.join(base, "datasources", "execflow.yaml")
    prov = os.path.join(base, "dashboards", "execflow.yaml")
    for path, needles in ((ds, ["apiVersion: 1", "type: prometheus", "url:"]),
                          (prov, ["apiVersion: 1", "type: file", "path: /var/lib/grafana/dashboards/execflow"])):
        rel = os.path.relpath(path, lib.REPO)
        if not c.check(os.path.isfile(path), f"{rel} is missing"):
            continue
        text = open(path, encoding="utf-8").read()
        for needle in needles:
            c.check(needle in text, f"{rel} has no {needle!r}")
        c.check("\t" not in text, f"{rel} contains a tab (invalid YAML indentation)")


def main():
    c = lib.Results("dashboards_static")
    try:
        dashboards = lib.load_dashboards()
    except ValueError as e:
        lib.log(f"FAIL: {e}")
        return 1
    uids = [d.get("uid") for _, d in dashboards]
    titles = [d.get("title") for _, d in dashboards]
    c.check(len(set(uids)) == len(uids), f"dashboard uids are not unique: {uids}")
    c.check(len(set(titles)) == len(titles), f"dashboard titles are not unique: {titles}")
    for uid, what in EXPECTED.items():
        c.check(uid in uids, f"the {what} dashboard (uid {uid}) is missing")

    used_metrics = set()
    queries = 0
    for path, dash in dashboards:
        name = os.path.relpath(path, lib.REPO)
        c.check(dash.get("id") is None, f"{name}: id must be null so that it imports anywhere")
        c.check(dash.get("uid") and len(dash["uid"]) <= 40, f"{name}: uid missing or over 40 characters")
        c.check("execflow" in dash.get("tags", []), f"{name}: no `execflow` tag (the dashboard links use it)")
        check_variables(c, name, dash, used_metrics)
        ids = [p.get("id") for p in lib.iter_panels(dash)]
        c.check(all(isinstance(i, int) for i in ids), f"{name}: a panel has no integer id")
        dupes = sorted({i for i in ids if ids.count(i) > 1}, key=str)
        c.check(not dupes, f"{name}: duplicate panel ids {dupes}")
        for p in lib.iter_panels(dash):
            if p.get("type") == "row":
                continue
            where = f"{name}: panel {p.get('id')} {p.get('title')!r}"
            c.check(is_our_datasource(p.get("datasource")), f"{where}: datasource is not ${{datasource}}")
            targets = p.get("targets", [])
            c.check(targets, f"{where}: has no query")
            for t in targets:
                twhere = f"{where} query {t.get('refId')}"
                c.check(is_our_datasource(t.get("datasource")), f"{twhere}: datasource is not ${{datasource}}")
                if c.check(t.get("expr"), f"{twhere}: no PromQL expression"):
                    queries += 1
                    check_query(c, twhere, t["expr"], t.get("legendFormat"), used_metrics,
                                {v.get("name") for v in dash.get("templating", {}).get("list", [])})

    heatmaps = [(p, t) for _, d in dashboards for p, t in lib.panel_queries(d)
                if p.get("type") == "heatmap" and "execflow_tcp_sendmsg_bytes_bucket" in t["expr"]]
    c.check(heatmaps, "no heatmap panel reads execflow_tcp_sendmsg_bytes_bucket")
    for p, t in heatmaps:
        c.check(t.get("format") == "heatmap" and re.search(r"by \(le\)", t["expr"]),
                f"heatmap {p.get('title')!r}: query must be `by (le)` with format heatmap")
    unused = sorted(set(lib.METRICS) - used_metrics)
    c.check(not unused, f"metrics of the contract shown on no dashboard: {unused}")
    c.check(RECORDED, "deploy/prometheus/rules.yml records something")
    unused = sorted(set(RECORDED) - used_metrics)
    c.check(not unused, f"recording rules no dashboard reads: {unused}")
    check_provisioning(c)

    lib.log(f"{len(dashboards)} dashboards, {queries} panel queries, metrics used: {len(used_metrics)}")
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
