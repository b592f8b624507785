#!/usr/bin/env bash
# Checks that the tree holds one copy of config/execflow.yaml and of each dashboard (the
# base includes the kustomizations next to them). Renders every kustomization under
# deploy/kubernetes with `kubectl kustomize`, validates
# every object against the schema of its kind (strictly: unknown fields fail too) and
# asserts the least-privilege rules of issue 5 (deploy_kubernetes_check.mjs). Then proves
# the checker can fail: four broken copies of the manifests must each be rejected with
# the expected message.
#   usage: deploy_kubernetes.sh [REPO]
set -euo pipefail
REPO=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
. "$REPO/tests/e2e/deploy_lib.sh"

need_cmd kubectl node diff git
need_npm_tools
# kubectl before 1.21 embeds kustomize v2, which lacks labels: and patches:.
kver=$(kubectl version --client 2>/dev/null | sed -n 's/^Kustomize Version: v\([0-9]*\).*/\1/p')
[[ -n "$kver" && "$kver" -ge 4 ]] || skip_or_fail "kubectl with kustomize >= v4 needed (found: ${kver:-none})"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ln -s "$EXECFLOW_TOOLS/node_modules" "$work/node_modules"
cp "$REPO/tests/e2e/deploy_kubernetes_check.mjs" "$work/"

# One copy of the default config and of each dashboard in the tree (the base includes
# the kustomizations next to them): copies ROOT prints every file of ROOT, of the NUL-
# separated list on stdin, that has the same bytes as config/execflow.yaml or a dashboard,
# or holds a dashboard's uid line (a copy embedded in a ConfigMap).
copies() {
  local root=$1 f orig uid_line
  while IFS= read -r -d '' f; do
    for orig in config/execflow.yaml dashboards/*.json; do
      [[ "$f" != "$orig" ]] || continue
      if cmp -s "$root/$f" "$REPO/$orig"; then echo "$f is a copy of $orig"; fi
      [[ "$orig" == *.json ]] || continue
      uid_line=$(grep -m1 '^  "uid": ' "$REPO/$orig")
      if grep -qF -- "$uid_line" "$root/$f"; then echo "$f holds $orig"; fi
    done
  done
}
tracked() { (cd "$REPO" && git ls-files -z --cached --others --exclude-standard); }
found=$(cd "$REPO" && copies "$REPO" < <(tracked))
[[ -z "$found" ]] || { echo "$found" >&2; fail "copies of config/execflow.yaml or dashboards/*.json in the tree"; }
echo "ok: one copy of config/execflow.yaml and of each of $(cd "$REPO" && ls dashboards/*.json | wc -l) dashboards"
# The check finds a planted copy of the config and a dashboard embedded in a ConfigMap.
plant="$work/plant"
mkdir -p "$plant/deploy"
cp "$REPO/config/execflow.yaml" "$plant/deploy/execflow.yaml"
sed 's/^/    /' "$REPO/dashboards/execflow-fleet-overview.json" >"$plant/deploy/dashboards.yaml"
found=$(cd "$REPO" && copies "$plant" < <(printf '%s\0' deploy/execflow.yaml deploy/dashboards.yaml))
want=$'deploy/execflow.yaml is a copy of config/execflow.yaml\ndeploy/dashboards.yaml holds dashboards/execflow-fleet-overview.json'
[[ "$found" == "$want" ]] || fail "planted copies: found '$found', want '$want'"
echo "ok: planted copies found"

# render TREE OUT: every kustomization of TREE/deploy/kubernetes into OUT/<name>.yaml
render() {
  local tree=$1/deploy/kubernetes out=$2 dir name
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

render "$REPO" "$work/render"
(cd "$work" && node deploy_kubernetes_check.mjs "$REPO" "$work/render") ||
  fail "rendered manifests do not pass (see FAIL lines above)"

# Each mutation breaks one rule; the checker must reject it and name the cause.
mutate() {
  local name=$1 file=$2 sed_expr=$3 want=$4 tree="$work/mut-$1"
  mkdir -p "$tree/deploy"
  cp -r "$REPO/deploy/kubernetes" "$tree/deploy/"
  cp -r "$REPO/config" "$REPO/dashboards" "$tree/"
  sed -i "$sed_expr" "$tree/deploy/kubernetes/$file"
  cmp -s "$tree/deploy/kubernetes/$file" "$REPO/deploy/kubernetes/$file" && fail "mutation $name changed nothing in $file"
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
