#!/bin/sh
# Runs one test of a sanitizer build tree (cmake/Sanitizers.cmake) and fails it if any
# instrumented process reported anything: the test binary itself, or an exporter an
# e2e script started, whose output the script keeps in a log it shows only on some
# failures, and whose exit status after SIGTERM or kill -9 it does not always check.
# Each runtime writes its reports to <folder>/report.<pid>, in a folder of this run;
# any file there is printed and fails the test, whatever the test's own exit status.
# Usage: run.sh COMMAND [ARG...]
set -u
dir=$(mktemp -d /tmp/execflow-sanitizer.XXXXXX) || exit 1
# Sticky and writable by all, as /tmp: hardening_e2e starts an exporter as a non-root user.
chmod 1777 "$dir"
here=$(cd "$(dirname "$0")" && pwd)

# Ours come last, so that a caller's own *SAN_OPTIONS cannot send reports elsewhere.
# halt_on_error, exitcode: the first report ends the process with a status no test expects.
# detect_leaks everywhere, the exporter included: LeakSanitizer's check at exit stops
# the threads with ptrace from a helper it clones, which still works after the exporter
# gave up every capability and set no_new_privs (the helper has the same uid and no more
# capabilities, and LeakSanitizer makes the process dumpable first; checked with a leak
# preloaded into the exporter, and with PR_SET_DUMPABLE 0 too). A check that cannot run
# ("LeakSanitizer has encountered a fatal error") is written to the report file as well,
# so a change that breaks it fails the tests instead of silencing them.
common="log_path=$dir/report:halt_on_error=1:exitcode=86:print_summary=1"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}$common:detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1:strict_init_order=1"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}$common:print_stacktrace=1"
# die_after_fork=0: integration tests fork children that start threads (a server in
# another network namespace); TSan kills such a child by default, since a fork of a
# threaded process may only run async-signal-safe code until exec. glibc makes malloc
# and pthread_create work there, and the tests rely on it (as they do without TSan).
export TSAN_OPTIONS="${TSAN_OPTIONS:+$TSAN_OPTIONS:}$common:suppressions=$here/tsan.supp:print_suppressions=0:second_deadlock_stack=1:die_after_fork=0"

"$@"
rc=$?

reports=$(find "$dir" -type f -name 'report.*' | sort)
if [ -n "$reports" ]; then
  for f in $reports; do
    echo "==== sanitizer report $(basename "$f") (.pid) ===="
    # A process that ends (exit, _exit in another thread) while its report is being
    # written leaves it short, or empty: still a report.
    if [ -s "$f" ]; then cat "$f"; else echo "(empty: the process ended as it began the report)"; fi
  done
  echo "FAIL: sanitizer reports above (test exit status $rc)"
  rc=1
fi
rm -rf "$dir"
exit $rc
