#!/usr/bin/env bash
# Renders every kustomization under deploy/kubernetes with `kubectl kustomize`, validates
# every object against the schema of its kind (strictly: unknown fields fail too) and
# asserts the least-privilege rules of issue 5 (deploy_kubernetes_check.mjs). Then proves
# the checker can fail: four broken copies of the manifests must each be rejected with
# the expected message.
#   usage: deploy_kubernetes.sh [REPO]
set -euo pipefail
REPO=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
. "$REPO/tests/e2e/deploy_lib.sh"

need_cmd kubectl node diff
need_npm_tools
# kubectl before 1.21 embeds kustomize v2, which lacks labels: and patches:.
kver=$(kubectl version --client 2>/dev/null | sed -n 's/^Kustomize Version: v\([0-9]*\).*/\1/p')
[[ -n "$kver" && "$kver" -ge 4 ]] || skip_or_fail "kubectl with kustomize >= v4 needed (found: ${kver:-none})"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ln -s "$EXECFLOW_TOOLS/node_modules" "$work/node_modules"
cp "$REPO/tests/e2e/deploy_kubernetes_check.mjs" "$work/"

# The base's copies of config/ and dashboards/ must be current.
"$REPO/deploy/kubernetes/sync.sh" --check

# render TREE OUT: every kustomization of a deploy/kubernetes tree into OUT/<name>.yaml
render() {
  local tree=$1 out=$2 dir name
  mkdir -p "$out"
  for dir in "$tree/base" "$tree"/overlays/*/; do
    dir=${dir%/}
    name=$(basename "$dir")
    if ! kubectl kustomize "$dir" >"$out/$name.yaml" 2>"$out/$name.err"; then
      cat "$out/$name.err" >&2
      fail "kubectl kustomize ${dir#"$tree/"} failed"
    fi
    # Deprecation warnings from kustomize mean the kustomization needs updating.
    [[ ! -s "$out/$name.err" ]] || { cat "$out/$name.err" >&2; fail "kubectl kustomize ${dir#"$tree/"} warned"; }
  done
}

render "$REPO/deploy/kubernetes" "$work/render"
(cd "$work" && node deploy_kubernetes_check.mjs "$REPO" "$work/render") ||
  fail "rendered manifests do not pass (see FAIL lines above)"

# Each mutation breaks one rule; the checker must reject it and name the cause.
mutate() {
  local name=$1 file=$2 sed_expr=$3 want=$4 tree="$work/mut-$1"
  mkdir -p "$tree"
  cp -r "$REPO/deploy/kubernetes/." "$tree/"
  sed -i "$sed_expr" "$tree/$file"
  cmp -s "$tree/$file" "$REPO/deploy/kubernetes/$file" && fail "mutation $name changed nothing in $file"
  render "$tree" "$work/render-$name"
  local out
  if out=$(cd "$work" && node deploy_kubernetes_check.mjs "$REPO" "$work/render-$name" 2>&1); then
    fail "mutation $name ($file: $sed_expr) was not detected"
  fi
  grep -qF -- "$want" <<<"$out" || { echo "$out" >&2; fail "mutation $name: no failure mentioning '$want'"; }
  echo "ok: mutation $name rejected ($want)"
}
mutate unknown-field base/daemonset.yaml \
  's/readOnlyRootFilesystem: true/readOnlyRootFileSystem: true/' "'\"readOnlyRootFileSystem\"' does not exist"
mutate wrong-type base/daemonset.yaml \
  's/periodSeconds: 10/periodSeconds: "10"/' "periodSeconds must be integer"
mutate extra-capability base/daemonset.yaml \
  's/add: \[BPF, PERFMON\]/add: [BPF, PERFMON, SYS_ADMIN]/' 'capabilities.add is ["BPF","PERFMON","SYS_ADMIN"]'
mutate no-job-label overlays/podmonitor/podmonitor.yaml \
  '/^  jobLabel:/d' 'PodMonitor: targets do not get job="execflow"'

echo "PASS: deploy/kubernetes renders, validates and keeps least privilege"
