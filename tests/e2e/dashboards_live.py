#!/usr/bin/env python3
"""A live scrape of execflow_exporter, against promtool and the dashboards.

Starts the exporter on a free loopback port with config/execflow.yaml, makes exec,
failed-exec and loopback TCP activity, scrapes /metrics and checks:
- `promtool check metrics` accepts the exposition;
- every metric that a dashboard query or variable names is in the scrape (but up and
  the recording rules' series, which Prometheus makes), and every label a query filters
  or groups on is on that metric (job and instance come from Prometheus and are not
  checked here).
Usage: dashboards_live.py [path/to/execflow_exporter]
"""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_lib as lib  # noqa: E402


def main():
    binary = lib.exporter_binary(sys.argv)
    promtool = lib.need_tool("promtool")
    r = lib.Results("dashboards_live")

    with lib.workdir("execflow-live-") as tmp, lib.running_exporter(binary, tmp) as address:
        with lib.Activity(tmp) as activity:
            lib.wait_until("two rounds of activity", lambda: activity.rounds >= 2 or activity.errors, 30)
        r.check(not activity.errors, "generating activity", str(activity.errors))
        time.sleep(0.5)  # let the exporter drain its ring buffer
        text = lib.http_get(f"http://{address}/metrics")

    p = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    out = (p.stdout + p.stderr).strip()
    r.check(p.returncode == 0, "promtool check metrics", f"exit {p.returncode}: {out}")
    if out:
        lib.log("promtool check metrics: " + out)

    samples = lib.scrape_samples(text)
    lib.log(f"scrape: {len(text)} bytes, {sum(map(len, samples.values()))} samples of "
            f"{len(samples)} names: {', '.join(sorted(samples))}")
    missing = set()
    recorded = lib.recorded_metrics()
    for path, dash in lib.load_dashboards():
        name = os.path.basename(path)
        exprs = [(f"{name} panel {p.get('id')} {p.get('title')!r} query {t.get('refId')}", t["expr"])
                 for p, t in lib.panel_queries(dash)]
        exprs += [(f"{name} variable {v.get('name')}", lib.split_label_values(q)[0] or "")
                  for v, q in lib.variable_queries(dash)]
        for where, expr in exprs:
            selectors, grouping = lib.analyze(lib.substitute(expr, lib.variable_values("j", "i")))
            labels_here, complete = set(lib.TARGET_LABELS), True
            for metric, matchers in selectors:
                if metric == "up" or metric in recorded:  # Prometheus's, not exported
                    continue
                if not r.check(metric in samples, f"{where}: {metric} is in the exporter's output"):
                    missing.add(metric)
                    complete = False
                    continue
                labels = set().union(*(s.keys() for s in samples[metric])) | lib.TARGET_LABELS
                labels_here |= labels
                for label, _, _ in matchers:
                    r.check(label in labels, f"{where}: {metric} is exported with label {label!r}")
            if complete:  # with a metric missing, its labels are unknown
                for label in grouping - lib.FLOW_LABEL_SET_ONLY:
                    r.check(label in labels_here, f"{where}: its metrics have label {label!r}, which it groups by")
    if missing:
        lib.log(f"metrics named by dashboards but not exported: {', '.join(sorted(missing))}")
    return r.finish()


if __name__ == "__main__":
    sys.exit(main())
