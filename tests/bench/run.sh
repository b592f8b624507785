#!/usr/bin/env bash
# The full benchmark (issue 6): installs what is missing (scripts/packages/core.txt
# and bench.txt), builds execflow and the workload driver (Release) in build-bench/,
# runs every measurement (about 22 minutes on 2 cores, plus the build), prints the
# Markdown tables and writes docs/benchmarks.md. Run as root from a clone:
#
#   tests/bench/run.sh                    # extra flags go to bench.py, e.g. --rounds 9
#   tests/bench/run.sh --phases scrape    # only the scrape section (the others are kept)
#
# BUILD_DIR overrides build-bench/. Nothing here passes or fails on a time.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ $(id -u) -ne 0 ]]; then
  echo "tests/bench/run.sh: run as root (it loads BPF programs)" >&2
  exit 1
fi

scripts/install-deps.sh core bench

build=${BUILD_DIR:-build-bench}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DEXECFLOW_BUILD_TESTS=ON >/dev/null
cmake --build "$build" -j"$(nproc)" --target execflow_exporter execflow_bench_load \
  execflow_bench_floor >/dev/null

exec python3 tests/bench/bench.py --exporter "$build/execflow_exporter" \
  --load "$build/execflow_bench_load" --floor "$build/execflow_bench_floor" \
  --write-doc docs/benchmarks.md \
  --command "tests/bench/run.sh${*:+ $*}" "$@"
