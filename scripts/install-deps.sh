#!/usr/bin/env bash
# Installs what execflow needs from Debian 12's or 13's packages (the same names): every package named in
# scripts/packages/*.txt (one per line, # comments) and the npm tools named in
# scripts/packages/*.npm.txt into /opt/execflow-tools. Installs only what is
# missing, so a second run is quick.
# Usage: scripts/install-deps.sh [LIST...]   e.g. "core" (build and run) or "core bench";
#        no LIST: every list, npm tools included (what the whole test suite needs).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: run as root (apt-get install needs it)" >&2
  exit 1
fi

lists=()
for f in scripts/packages/*.txt; do
  [[ $f == *.npm.txt ]] || lists+=("$f")
done
if (($#)); then
  lists=()
  for name in "$@"; do
    [[ -f scripts/packages/$name.txt ]] || { echo "install-deps: no list scripts/packages/$name.txt" >&2; exit 2; }
    lists+=("scripts/packages/$name.txt")
  done
fi
mapfile -t wanted < <(sed 's/\s*#.*//; /^\s*$/d' "${lists[@]}" | sort -u)

missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if (($# == 0)) && compgen -G 'scripts/packages/*.npm.txt' >/dev/null; then
  mapfile -t npm_wanted < <(grep -hv '^\s*\(#\|$\)' scripts/packages/*.npm.txt | sort -u)
  if ((${#npm_wanted[@]})); then
    command -v npm >/dev/null || { apt-get install -y -qq --no-install-recommends npm >/dev/null; }
    mkdir -p /opt/execflow-tools
    need=()
    for spec in "${npm_wanted[@]}"; do
      name=${spec%@*}
      have=$(node -p "try{require('/opt/execflow-tools/node_modules/$name/package.json').version}catch(e){''}" 2>/dev/null || true)
      [[ "$name@$have" == "$spec" ]] || need+=("$spec")
    done
    if ((${#need[@]})); then
      echo "install-deps: npm installing ${need[*]}"
      npm install --silent --no-audit --no-fund --prefix /opt/execflow-tools "${need[@]}" >/dev/null
    fi
  fi
fi

# Classic tracepoints are attached through tracefs.
if [[ ! -d /sys/kernel/tracing/events ]]; then
  mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true
fi
