#!/usr/bin/env python3
"""promtool on what deploy/prometheus and dashboards/ ship (no exporter needed).

- promtool check config deploy/prometheus/prometheus.yml (which also loads alerts.yml
  and rules.yml);
- promtool check rules deploy/prometheus/alerts.yml rules.yml;
- promtool test rules deploy/prometheus/alerts_test.yml rules_test.yml;
- alerts_test.yml has, for every alert in alerts.yml, a case where it fires and one where
  it does not; rules_test.yml expects samples of every recording rule in rules.yml;
- every dashboard query (template variables substituted) parses as PromQL: they are
  written to a temporary rule file as recording rules and checked with promtool.
"""

import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_lib as lib  # noqa: E402

VALUES = lib.variable_values("execflow", "127.0.0.1:9741")


def run(argv, cwd=None):
    lib.log("$ " + " ".join(argv))
    p = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60)
    out = (p.stdout + p.stderr).strip()
    if out:
        lib.log("  " + out.replace("\n", "\n  "))
    return p.returncode == 0, out


def alert_coverage():
    """{alert: (fires in some case, silent in some case)} from the two YAML files."""
    alerts = re.findall(r"^\s*- alert:\s*\"?(\w+)", open(os.path.join(lib.PROMETHEUS_DIR, "alerts.yml")).read(), re.M)
    cover = {a: [False, False] for a in alerts}
    current = None
    lines = open(os.path.join(lib.PROMETHEUS_DIR, "alerts_test.yml")).read().splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^\s*(?:- )?alertname:\s*(\S+)", line)
        if m:
            current = m.group(1)
            cover.setdefault(current, [False, False])
            continue
        m = re.match(r"^\s*exp_alerts:\s*(\[\])?\s*$", line)
        if m and current:
            if m.group(1):
                cover[current][1] = True
            elif i + 1 < len(lines) and re.match(r"^\s*- exp_labels:", lines[i + 1]):
                cover[current][0] = True
            current = None
    return alerts, cover


def recording_coverage():
    """Names of the recording rules that rules_test.yml queries and expects samples of."""
    text = open(os.path.join(lib.PROMETHEUS_DIR, "rules_test.yml")).read()
    return set(re.findall(r"^\s*- expr:\s*([\w:]+)\s*\n\s*eval_time:.*\n\s*exp_samples:\s*\n\s*- labels:", text, re.M))


def dashboard_rules(path):
    """Writes every dashboard query as a recording rule; returns {record name: where}."""
    where = {}
    lines = ["groups:", "  - name: dashboard_queries", "    rules:"]
    for dpath, dash in lib.load_dashboards():
        slug = re.sub(r"\W", "_", dash.get("uid", "dashboard"))
        for p, t in lib.panel_queries(dash):
            record = f"{slug}:panel{p.get('id')}:{t.get('refId')}"
            where[record] = f"{os.path.basename(dpath)} panel {p.get('id')} {p.get('title')!r} query {t.get('refId')}"
            lines.append(f"      - record: {record}")
            lines.append(f"        expr: {json.dumps(lib.substitute(t['expr'], VALUES))}")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return where


def main():
    promtool = lib.need_tool("promtool")
    results = {}
    d = lib.PROMETHEUS_DIR
    results["check config"] = run([promtool, "check", "config", "prometheus.yml"], cwd=d)[0]
    results["check rules"] = run([promtool, "check", "rules", "alerts.yml", "rules.yml"], cwd=d)[0]
    results["test rules"] = run([promtool, "test", "rules", "alerts_test.yml", "rules_test.yml"], cwd=d)[0]

    alerts, cover = alert_coverage()
    missing = [f"{a}: fires {'yes' if f else 'never'}, silent {'yes' if s else 'never'}"
               for a, (f, s) in sorted(cover.items()) if not (f and s)]
    unknown = sorted(set(cover) - set(alerts))
    lib.log(f"alerts: {len(alerts)}; tested firing and not firing: {len(alerts) - len(missing)}")
    for m in missing:
        lib.log(f"  not covered: {m}")
    for u in unknown:
        lib.log(f"  alerts_test.yml tests {u}, which alerts.yml does not define")
    results["every alert tested firing and not firing"] = bool(alerts) and not missing and not unknown

    recorded = sorted(lib.recorded_metrics())
    tested = recording_coverage()
    untested = [name for name in recorded if name not in tested]
    lib.log(f"recording rules: {len(recorded)}; with expected samples: {len(recorded) - len(untested)}")
    for name in untested:
        lib.log(f"  no promql_expr_test expects samples of {name}")
    results["every recording rule tested with samples"] = bool(recorded) and not untested

    with lib.workdir("execflow-promtool-") as tmp:
        rules = os.path.join(tmp, "dashboard_queries.yml")
        where = dashboard_rules(rules)
        ok, out = run([promtool, "check", "rules", rules])
        for record, w in where.items():
            if f'"{record}"' in out:
                lib.log(f"  {record} is {w}")
        results[f"{len(where)} dashboard queries parse"] = ok and len(where) > 0

    failed = [k for k, v in results.items() if not v]
    for k, v in results.items():
        lib.log(f"{'PASS' if v else 'FAIL'}: {k}")
    lib.log(f"dashboards_promtool: {len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
