#!/bin/sh
# Every BPF map access from C++ goes through exporter/bpf/kernel_map.cc, which
# checks each buffer's size against the map's key and value sizes: the kernel
# writes as many bytes as the map says into whatever buffer it is handed, and
# no sanitizer sees those writes. Fails, naming each line, if a raw fd-level
# call that takes a buffer appears anywhere else in the exporter.
# Usage: raw_map_calls.sh SOURCE_DIR
src=${1:?usage: raw_map_calls.sh SOURCE_DIR}
found=$(grep -rnE '\bbpf_map_(lookup|update|delete|get_next_key)[a-z_]*[[:space:]]*\(' "$src/exporter" \
  | grep -v "^$src/exporter/bpf/kernel_map.cc:")
if [ -n "$found" ]; then
  echo "raw BPF map calls outside exporter/bpf/kernel_map.cc (use KernelMap, which checks sizes):"
  echo "$found"
  exit 1
fi
echo "no raw BPF map calls outside exporter/bpf/kernel_map.cc"
