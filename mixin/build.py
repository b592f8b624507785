#!/usr/bin/python3
"""Writes the files the monitoring mixin generates: dashboards/*.json, the Kubernetes
kustomization that turns them into a ConfigMap, deploy/prometheus/alerts.yml and
rules.yml (the list is mixin/build.jsonnet).

usage: mixin/build.py [--out DIR] [--mixin FILE]
  --out DIR     write under DIR instead of the repository (as DIR/dashboards/..., ...)
  --mixin FILE  a jsonnet file that evaluates to the mixin, e.g. one that changes its
                _config; `import 'mixin.libsonnet'` finds this folder's. Default: the
                mixin as it is.
Needs Debian's jsonnet and python3-yaml (hence /usr/bin/python3: the same PyYAML, the
same bytes, on every machine).
"""

import argparse
import glob
import json
import os
import subprocess
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
# Keys in the order Prometheus' and Kubernetes' documentation write them; others follow
# in jsonnet's (alphabetical) order.
FIRST = ["apiVersion", "kind", "name", "record", "alert", "expr", "for", "labels", "annotations",
         "summary", "description", "runbook"]


class Dumper(yaml.SafeDumper):
    """Block style, lists indented under their key, multi-line strings as `|` blocks."""

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


def _represent_str(dumper, s):
    return dumper.represent_scalar("tag:yaml.org,2002:str", s, style="|" if "\n" in s else None)


def _represent_dict(dumper, d):
    keys = sorted(d, key=lambda k: (FIRST.index(k) if k in FIRST else len(FIRST), k))
    return dumper.represent_mapping("tag:yaml.org,2002:map", [(k, d[k]) for k in keys])


Dumper.add_representer(str, _represent_str)
Dumper.add_representer(dict, _represent_dict)


def generate(mixin=None):
    """{path from the repository root: file content} for every generated file."""
    argv = ["jsonnet", "-J", HERE, os.path.join(HERE, "build.jsonnet")]
    if mixin:
        argv[3:3] = ["--tla-code-file", f"mixin={mixin}"]
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    files = {}
    for path, value in json.loads(out).items():
        if path.endswith(".json"):
            # Python, not jsonnet, writes it: jsonnet 0.18 prints 0.1 as 0.10000000000000001.
            files[path] = json.dumps(value, indent=2) + "\n"
        else:
            # Nor YAML: jsonnet 0.18's std.manifestYamlDoc takes seconds per kilobyte.
            files[path] = value["header"] + yaml.dump(value["value"], Dumper=Dumper, width=100)
    return files


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=REPO)
    ap.add_argument("--mixin")
    args = ap.parse_args()
    try:
        files = generate(args.mixin)
    except FileNotFoundError:
        sys.exit("build.py: jsonnet not found (apt-get install jsonnet)")
    except subprocess.CalledProcessError as e:
        sys.exit(f"build.py: jsonnet failed:\n{e.stderr}")
    # dashboards/*.json are all generated: one the mixin no longer makes is removed.
    for stale in set(glob.glob(os.path.join(args.out, "dashboards", "*.json"))) - {
            os.path.join(args.out, p) for p in files}:
        os.remove(stale)
        print(f"removed {os.path.relpath(stale, args.out)}")
    for path, text in sorted(files.items()):
        dest = os.path.join(args.out, path)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "w", encoding="utf-8") as f:
            f.write(text)
    print(f"wrote {len(files)} files under {args.out}")


if __name__ == "__main__":
    main()
