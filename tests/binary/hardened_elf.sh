#!/bin/sh
# Checks that the shipped binaries are built like a distribution's daemon
# (cmake/Hardening.cmake), reading their ELF headers with readelf:
#   every file: full RELRO (a GNU_RELRO segment and BIND_NOW), a non-executable stack;
#   the exporter also: a position-independent executable (type DYN), and calls into
#   the stack protector (__stack_chk_fail) and fortified libc (at least one __*_chk).
# Usage: hardened_elf.sh EXPORTER [SHARED_LIBRARY...]. One line per missing property;
# exit 1 if any is missing.
set -u
failed=0
fail() {
  echo "FAIL: $1: $2"
  failed=1
}

check_common() {
  f=$1
  if ! readelf -h "$f" >/dev/null 2>&1; then
    fail "$f" "not an ELF file readelf can read"
    return 1
  fi
  readelf -lW "$f" | grep -q '^ *GNU_RELRO ' || fail "$f" "no GNU_RELRO segment (link with -z relro)"
  # -z now sets BIND_NOW in DT_FLAGS and NOW in DT_FLAGS_1; either makes the loader
  # resolve every symbol at start-up, so that the whole GOT can be made read-only.
  readelf -dW "$f" | grep -Eq '\(BIND_NOW\)|\(FLAGS\).*BIND_NOW|\(FLAGS_1\).*[[:space:]]NOW' ||
    fail "$f" "no BIND_NOW (link with -z now: RELRO is only partial without it)"
  stack=$(readelf -lW "$f" | awk '$1 == "GNU_STACK" { print $(NF-1) }')
  case $stack in
    "") fail "$f" "no GNU_STACK segment (the stack would be executable)" ;;
    *E*) fail "$f" "executable stack (GNU_STACK $stack; link with -z noexecstack)" ;;
  esac
  return 0
}

[ $# -ge 1 ] || { echo "usage: $0 EXPORTER [SHARED_LIBRARY...]" >&2; exit 2; }
exporter=$1
shift
if check_common "$exporter"; then
  type=$(readelf -hW "$exporter" | awk '$1 == "Type:" { print $2 }')
  [ "$type" = DYN ] || fail "$exporter" "ELF type $type, not DYN (build with -fPIE -pie)"
  syms=$(readelf --dyn-syms -W "$exporter")
  echo "$syms" | grep -Eq ' __stack_chk_fail(@|$)' ||
    fail "$exporter" "does not call __stack_chk_fail (build with -fstack-protector-strong)"
  chk=$(echo "$syms" | grep -Eo ' __[a-z0-9_]+_chk(@|$)' | tr -d ' @' | grep -v '^__stack_chk' | sort -u)
  if [ -n "$chk" ]; then
    echo "fortified calls in $exporter: $(echo $chk)"
  else
    fail "$exporter" "no fortified libc call (__*_chk) (build with -O2 -D_FORTIFY_SOURCE=3)"
  fi
fi
for lib in "$@"; do
  check_common "$lib"
done
[ $failed -eq 0 ] && echo "hardened: $exporter $*"
exit $failed
