# Shared by tests/e2e/deploy_*.sh: sourced, not run.

# A test that lacks something it needs prints SKIP and exits 77, which CTest reports as
# skipped (SKIP_RETURN_CODE 77). Under CI=true the same lack is a failure: CI has
# every dependency installed (scripts/install-deps.sh).
skip_or_fail() {
  if [[ "${CI:-}" == true ]]; then
    echo "FAIL: $* (CI=true: missing prerequisites are failures)" >&2
    exit 1
  fi
  echo "SKIP: $*"
  exit 77
}

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

need_cmd() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || skip_or_fail "$c not found (scripts/packages/deploy.txt)"
  done
}

need_root() {
  [[ $(id -u) == 0 ]] || skip_or_fail "needs root ($*)"
}

# npm tools from scripts/packages/deploy.npm.txt, installed by scripts/install-deps.sh.
EXECFLOW_TOOLS="${EXECFLOW_TOOLS:-/opt/execflow-tools}"
need_npm_tools() {
  local spec name
  while read -r spec; do
    [[ -z "$spec" || "$spec" == \#* ]] && continue
    name="${spec%@*}"
    [[ -f "$EXECFLOW_TOOLS/node_modules/$name/package.json" ]] ||
      skip_or_fail "npm package $spec not in $EXECFLOW_TOOLS (scripts/install-deps.sh installs it)"
  done <"$REPO/scripts/packages/deploy.npm.txt"
}
