#!/bin/sh
# The exporter's quick exits (--version, --help, a bad flag, a config that is a folder),
# each 10 times with its exact exit status. What they check is the process' end: the
# thread that waits for SIGTERM and SIGINT starts before main() reads anything, so each
# of these exits while that thread may still be starting. Run through
# tests/sanitizers/run.sh in the sanitizer trees, any report of it (a thread using
# main()'s returned frame, say) fails the test; a plain build checks the exit statuses.
# Usage: exporter_exits.sh EXPORTER
set -u
exporter=$1
dir=$(mktemp -d /tmp/execflow-exits.XXXXXX) || exit 1
trap 'rm -rf "$dir"' EXIT
failed=0
expect() {
  want=$1
  shift
  "$exporter" "$@" >/dev/null 2>&1
  got=$?
  if [ "$got" -ne "$want" ]; then
    echo "FAIL: execflow_exporter $*: exit status $got, expected $want"
    failed=1
  fi
}
for round in 1 2 3 4 5 6 7 8 9 10; do
  expect 0 --version
  expect 0 --help
  expect 2 --no-such-flag
  expect 2 --config.check --config.file="$dir"
done
[ $failed -eq 0 ] && echo "exporter_exits: 40 exits with the expected status"
exit $failed
