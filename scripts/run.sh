#!/usr/bin/env bash
# Installs what is missing, builds, and runs execflow_exporter in the foreground
# with the bundled default config on :9741. Extra arguments go to the exporter.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh core
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DEXECFLOW_BUILD_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" --target execflow_exporter
exec build/execflow_exporter --config.file config/execflow.yaml "$@"
