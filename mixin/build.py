#!/usr/bin/env python3
"""Writes the files the monitoring mixin generates: dashboards/*.json, the Kubernetes
kustomization that turns them into a ConfigMap, deploy/prometheus/alerts.yml (the list
is mixin/build.jsonnet).

usage: mixin/build.py [--out DIR] [--mixin FILE]
  --out DIR     write under DIR instead of the repository (as DIR/dashboards/..., ...)
  --mixin FILE  a jsonnet file that evaluates to the mixin, e.g. one that changes its
                _config; `import 'mixin.libsonnet'` finds this folder's. Default: the
                mixin as it is.
Needs jsonnet (Debian package jsonnet).
"""

import argparse
import glob
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def generate(mixin=None):
    """{path from the repository root: file content} for every generated file."""
    argv = ["jsonnet", "-J", HERE, os.path.join(HERE, "build.jsonnet")]
    if mixin:
        argv[3:3] = ["--tla-code-file", f"mixin={mixin}"]
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    files = {}
    for path, value in json.loads(out).items():
        # Python, not jsonnet, writes the JSON: jsonnet 0.18 prints 0.1 as 0.10000000000000001.
        files[path] = json.dumps(value, indent=2) + "\n" if path.endswith(".json") else value
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
