// Checks the rendered Kubernetes manifests of every kustomization in deploy/kubernetes.
//
//   node deploy_kubernetes_check.mjs REPO RENDER_DIR
//
// RENDER_DIR holds one <name>.yaml per kustomization (base, overlay names), as printed by
// `kubectl kustomize`. For each object:
//   1. schema: the JSON schema of its apiVersion/kind from the Kubernetes OpenAPI spec
//      (npm kubernetes-models) or the prometheus-operator CRDs
//      (npm @kubernetes-models/prometheus-operator): types, required fields, enums, formats;
//   2. strict fields: TypeScript's excess-property check against the same models' types
//      finds fields the schema does not know (the API server rejects those under
//      kubectl's default --validate=strict, while a JSON schema without
//      additionalProperties: false lets them through);
//   3. the least-privilege and operability rules of issue 5, per overlay.
// Must run from a directory whose node_modules has kubernetes-models,
// @kubernetes-models/prometheus-operator, yaml and typescript.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import YAML from "yaml";

const [repo, renderDir] = process.argv.slice(2);
if (!repo || !renderDir) {
  console.error("usage: deploy_kubernetes_check.mjs REPO RENDER_DIR");
  process.exit(2);
}

const failures = [];
let checks = 0;
function check(cond, where, what) {
  checks++;
  if (!cond) failures.push(`${where}: ${what}`);
  return cond;
}
const eq = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const show = (v) => JSON.stringify(v);

// ---- load every rendered object -------------------------------------------------------
const renders = {};
for (const file of readdirSync(renderDir).filter((f) => f.endsWith(".yaml")).sort()) {
  const name = basename(file, ".yaml");
  const docs = YAML.parseAllDocuments(readFileSync(join(renderDir, file), "utf8"));
  renders[name] = [];
  for (const doc of docs) {
    if (doc.errors.length) {
      check(false, name, `YAML error: ${doc.errors[0].message}`);
      continue;
    }
    const obj = doc.toJS();
    if (obj != null) renders[name].push(obj);
  }
}
const expectedRenders = ["base", "legacy-kernel", "podmonitor", "privileged"];
for (const r of expectedRenders) check(r in renders, r, "kustomization was not rendered");

const id = (o) => `${o.kind}/${o.metadata?.name}`;

// ---- 1. schema validation -------------------------------------------------------------
function modelModule(apiVersion, kind) {
  const group = apiVersion.includes("/") ? apiVersion.split("/")[0] : "";
  if (group === "monitoring.coreos.com")
    return `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`;
  return `kubernetes-models/${apiVersion}/${kind}`;
}
const modulePath = (m) => join(process.cwd(), "node_modules", `${m}.js`);

const strictSources = [];
for (const [render, objs] of Object.entries(renders)) {
  for (const [i, obj] of objs.entries()) {
    const where = `${render}: ${id(obj)}`;
    if (!check(obj.apiVersion && obj.kind, where, "no apiVersion or kind")) continue;
    const mod = modelModule(obj.apiVersion, obj.kind);
    if (!check(existsSync(modulePath(mod)), where, `no schema for ${obj.apiVersion} ${obj.kind}`))
      continue;
    const Model = (await import(mod))[obj.kind];
    try {
      new Model(obj).validate();
      checks++;
    } catch (e) {
      check(false, where, `schema: ${e.message}`);
    }
    strictSources.push({ where, mod, kind: obj.kind, obj, name: `o_${render.replace(/\W/g, "_")}_${i}` });
  }
}

// ---- 2. unknown fields, with the TypeScript compiler ----------------------------------
{
  const imports = new Map();
  const lines = [];
  const owner = []; // line number -> object
  for (const s of strictSources) {
    const alias = `I_${s.mod.replace(/\W/g, "_")}`;
    imports.set(alias, `import type { I${s.kind} as ${alias} } from "${s.mod}";`);
  }
  lines.push(...imports.values());
  for (const s of strictSources) {
    const body = `export const ${s.name}: I_${s.mod.replace(/\W/g, "_")} = ${JSON.stringify(s.obj, null, 1)};`;
    for (const l of body.split("\n")) {
      owner[lines.length + 1] = s.where;
      lines.push(l);
    }
  }
  writeFileSync("manifests.ts", lines.join("\n") + "\n");
  writeFileSync(
    "tsconfig.json",
    JSON.stringify({
      compilerOptions: {
        strict: true, noEmit: true, module: "nodenext", moduleResolution: "nodenext",
        skipLibCheck: true, types: [],
      },
      files: ["manifests.ts"],
    }),
  );
  let out = "";
  try {
    execFileSync(join("node_modules", ".bin", "tsc"), ["-p", "tsconfig.json"], { encoding: "utf8" });
  } catch (e) {
    out = `${e.stdout ?? ""}${e.stderr ?? ""}`;
    if (!out.trim()) out = String(e);
  }
  checks++;
  for (const l of out.split("\n").filter((x) => x.trim())) {
    const m = l.match(/^manifests\.ts\((\d+),\d+\): error TS\d+: (.*)$/);
    if (m) {
      const src = lines[Number(m[1]) - 1].trim();
      failures.push(`${owner[Number(m[1])] ?? "manifests.ts"}: strict schema: ${m[2]} (at ${src})`);
    } else if (!/^\s/.test(l)) {
      failures.push(`tsc: ${l}`);
    }
  }
}

// ---- 3. the rules of issue 5 ----------------------------------------------------------
const configSource = readFileSync(join(repo, "config", "execflow.yaml"), "utf8");
const wantJob = readFileSync(join(repo, "mixin", "config.libsonnet"), "utf8")
  .match(/^\s*execflowSelector: 'job="([^"]+)"',$/m)?.[1];
check(wantJob, "mixin/config.libsonnet", "execflowSelector is not of the form job=\"NAME\"");
const dashboardDir = join(repo, "dashboards");
const dashboardFiles = existsSync(dashboardDir)
  ? readdirSync(dashboardDir).filter((f) => f.endsWith(".json")).sort()
  : [];

for (const [render, objs] of Object.entries(renders)) {
  const of = (kind) => objs.filter((o) => o.kind === kind);
  const one = (kind) => {
    const l = of(kind);
    check(l.length === 1, render, `expected exactly one ${kind}, found ${l.length}`);
    return l[0];
  };
  for (const o of objs)
    if (o.kind !== "Namespace")
      check(o.metadata?.namespace === "execflow", `${render}: ${id(o)}`,
            `namespace is ${show(o.metadata?.namespace)}, want "execflow"`);

  const ns = one("Namespace");
  const sa = one("ServiceAccount");
  const ds = one("DaemonSet");
  const svc = one("Service");
  if (!ns || !sa || !ds || !svc) continue;
  const w = `${render}: DaemonSet`;
  check(ns.metadata.name === "execflow", render, "namespace is not execflow");
  check(sa.automountServiceAccountToken === false, `${render}: ServiceAccount`,
        "automountServiceAccountToken must be false");

  // Scraping: exactly one of ServiceMonitor (base) or PodMonitor (podmonitor overlay).
  const sms = of("ServiceMonitor");
  const pms = of("PodMonitor");
  const wantPod = render === "podmonitor";
  check(sms.length === (wantPod ? 0 : 1) && pms.length === (wantPod ? 1 : 0), render,
        `want ${wantPod ? "one PodMonitor and no ServiceMonitor" : "one ServiceMonitor and no PodMonitor"}` +
        `, found ${sms.length} ServiceMonitor and ${pms.length} PodMonitor`);
  for (const m of [...sms, ...pms]) {
    const eps = m.spec.endpoints ?? m.spec.podMetricsEndpoints ?? [];
    check(eps.length > 0, `${render}: ${id(m)}`, "no endpoints");
    for (const ep of eps) {
      check(ep.honorLabels === true, `${render}: ${id(m)}`, "honorLabels must be true");
      check(ep.port === "metrics", `${render}: ${id(m)}`, `port is ${show(ep.port)}, want "metrics"`);
      check((ep.path ?? "/metrics") === "/metrics", `${render}: ${id(m)}`, "path must be /metrics");
    }
  }

  const spec = ds.spec;
  const pod = spec.template.spec;
  const podLabels = spec.template.metadata?.labels ?? {};
  for (const [k, v] of Object.entries(spec.selector.matchLabels ?? {}))
    check(podLabels[k] === v, w, `selector ${k}=${v} does not match the pod labels`);
  for (const [k, v] of Object.entries(svc.spec.selector ?? {}))
    check(podLabels[k] === v, `${render}: Service`, `selector ${k}=${v} does not match the pods`);
  check(svc.spec.clusterIP === "None", `${render}: Service`, "must be headless (clusterIP: None)");
  for (const m of sms)
    for (const [k, v] of Object.entries(m.spec.selector.matchLabels ?? {}))
      check(svc.metadata.labels?.[k] === v, `${render}: ServiceMonitor`,
            `selector ${k}=${v}: the Service has no such label`);
  for (const m of pms)
    for (const [k, v] of Object.entries(m.spec.selector.matchLabels ?? {}))
      check(podLabels[k] === v, `${render}: PodMonitor`, `selector ${k}=${v} matches no pod label`);
  // The job label Prometheus gives the targets (prometheus-operator: the jobLabel's value,
  // else the Service's name or "namespace/PodMonitor") is the one the alerts, recording
  // rules and dashboards select.
  for (const m of sms)
    check(wantJob === (m.spec.jobLabel ? svc.metadata.labels?.[m.spec.jobLabel] : svc.metadata.name),
          `${render}: ServiceMonitor`, `targets do not get job="${wantJob}" (mixin/config.libsonnet)`);
  for (const m of pms)
    check(wantJob === (m.spec.jobLabel ? podLabels[m.spec.jobLabel] : `${m.metadata.namespace}/${m.metadata.name}`),
          `${render}: PodMonitor`, `targets do not get job="${wantJob}" (mixin/config.libsonnet)`);

  check(spec.updateStrategy?.type === "RollingUpdate", w, "updateStrategy must be RollingUpdate");
  check(spec.updateStrategy?.rollingUpdate?.maxUnavailable !== undefined, w,
        "rollingUpdate.maxUnavailable must be set");
  check(pod.priorityClassName === "system-node-critical", w,
        `priorityClassName is ${show(pod.priorityClassName)}`);
  check(pod.nodeSelector?.["kubernetes.io/os"] === "linux", w, "nodeSelector kubernetes.io/os: linux missing");
  check((pod.tolerations ?? []).some((t) => t.operator === "Exists" && !t.key && !t.effect), w,
        "needs a toleration {operator: Exists} with no key and no effect (tolerates every taint)");
  check(!pod.hostPID, w, "hostPID must not be set");
  check(!pod.hostIPC, w, "hostIPC must not be set");
  check(!pod.hostNetwork, w, "hostNetwork must not be set");
  check(pod.automountServiceAccountToken === false, w, "automountServiceAccountToken must be false");
  check(pod.serviceAccountName === sa.metadata.name, w, "serviceAccountName must name the ServiceAccount");

  check(pod.containers.length === 1, w, `expected one container, found ${pod.containers.length}`);
  check(!pod.initContainers?.length, w, "no init containers expected");
  const c = pod.containers[0];
  const cw = `${w} container ${c.name}`;
  const sc = c.securityContext ?? {};
  const psc = pod.securityContext ?? {};
  check(c.image && !/:latest$/.test(c.image) && /:[^/]+$|@sha256:/.test(c.image), cw,
        `image ${show(c.image)} must carry a version tag or digest`);
  check(sc.readOnlyRootFilesystem === true, cw, "readOnlyRootFilesystem must be true");
  if (render === "privileged") {
    check(sc.privileged === true, cw, "the privileged overlay must set privileged: true");
  } else {
    check(sc.privileged !== true, cw, "privileged must not be set");
    check(sc.allowPrivilegeEscalation === false, cw, "allowPrivilegeEscalation must be false");
    check(eq(sc.capabilities?.drop, ["ALL"]), cw, `capabilities.drop is ${show(sc.capabilities?.drop)}, want ["ALL"]`);
    const wantAdd = render === "legacy-kernel" ? ["SYS_ADMIN", "SYS_RESOURCE"] : ["BPF", "PERFMON"];
    check(eq(sc.capabilities?.add, wantAdd), cw,
          `capabilities.add is ${show(sc.capabilities?.add)}, want ${show(wantAdd)}`);
    check(sc.seccompProfile?.type === "RuntimeDefault" || psc.seccompProfile?.type === "RuntimeDefault",
          cw, "seccompProfile must be RuntimeDefault");
  }

  const portNames = new Set((c.ports ?? []).map((p) => p.name));
  check(portNames.has("metrics"), cw, "needs a container port named metrics");
  check((c.ports ?? []).some((p) => p.name === "metrics" && p.containerPort === 9741), cw,
        "port metrics must be 9741");
  check(svc.spec.ports.some((p) => p.targetPort === "metrics" || p.targetPort === 9741), `${render}: Service`,
        "no port targets the container's metrics port");
  const probe = (p, path, name) => {
    check(p?.httpGet?.path === path, cw, `${name} must be an HTTP GET of ${path}, is ${show(p?.httpGet)}`);
    check(p?.httpGet && (portNames.has(p.httpGet.port) || p.httpGet.port === 9741), cw,
          `${name} port ${show(p?.httpGet?.port)} is not the metrics port`);
  };
  probe(c.livenessProbe, "/healthz", "livenessProbe");
  probe(c.readinessProbe, "/readyz", "readinessProbe");
  check(c.startupProbe?.httpGet !== undefined, cw, "needs an HTTP startupProbe");

  const req = c.resources?.requests ?? {};
  const lim = c.resources?.limits ?? {};
  for (const r of ["cpu", "memory"]) {
    check(req[r] !== undefined && lim[r] !== undefined, cw, `resources need ${r} requests and limits`);
    check(req[r] === lim[r], cw, `${r} requests (${req[r]}) must equal limits (${lim[r]})`);
  }

  // Volumes: the config, read-only hostPaths for BTF, tracefs and what names
  // workloads (cgroupfs, the kubelet's log folders), and the two writable mounts that
  // carry state across restarts: the host's bpffs, where the BPF state is pinned, and
  // /run/execflow, where bpf.state_file keeps what user space took out of the maps.
  const vols = Object.fromEntries((pod.volumes ?? []).map((v) => [v.name, v]));
  const mounts = c.volumeMounts ?? [];
  const hostPaths = (pod.volumes ?? []).filter((v) => v.hostPath).map((v) => v.hostPath.path).sort();
  const wantPaths = ["/run/execflow", "/sys/fs/bpf", "/sys/fs/cgroup", "/sys/kernel/btf", "/sys/kernel/tracing",
                     "/var/log/containers", "/var/log/pods"];
  check(eq(hostPaths, wantPaths), w, `hostPath volumes are ${show(hostPaths)}, want only ${show(wantPaths)}`);
  for (const m of mounts) {
    const bpffs = vols[m.name]?.hostPath?.path === "/sys/fs/bpf";
    const state = vols[m.name]?.hostPath?.path === "/run/execflow";
    if (state) {
      check(m.readOnly !== true && vols[m.name].hostPath.type === "DirectoryOrCreate", cw,
            `volumeMount ${m.name} at ${m.mountPath} must be writable, its hostPath DirectoryOrCreate`);
    } else {
      check(bpffs ? m.readOnly !== true && m.mountPropagation === "HostToContainer" : m.readOnly === true, cw,
            bpffs ? `volumeMount ${m.name} at ${m.mountPath} must be writable, HostToContainer`
                  : `volumeMount ${m.name} at ${m.mountPath} must be readOnly`);
    }
    check(vols[m.name] !== undefined, cw, `volumeMount ${m.name} has no volume`);
    if (vols[m.name]?.hostPath)
      check(m.mountPath === vols[m.name].hostPath.path, cw,
            `hostPath ${vols[m.name].hostPath.path} is mounted at ${m.mountPath}, want the same path`);
  }
  for (const hp of hostPaths)
    check(mounts.some((m) => vols[m.name]?.hostPath?.path === hp), cw, `${hp} is not mounted`);

  // The config ConfigMap: mounted, referenced by its hashed name, same bytes as config/.
  const cfgVol = (pod.volumes ?? []).find((v) => v.configMap);
  const cfg = cfgVol && objs.find((o) => o.kind === "ConfigMap" && o.metadata.name === cfgVol.configMap.name);
  if (check(cfg, w, "the config volume names no rendered ConfigMap")) {
    check(/^execflow-config-[a-z0-9]{10}$/.test(cfg.metadata.name), `${render}: ${id(cfg)}`,
          "the config ConfigMap name must carry kustomize's content hash (rolls pods on change)");
    check(cfg.data?.["execflow.yaml"] === configSource, `${render}: ${id(cfg)}`,
          "data execflow.yaml differs from config/execflow.yaml");
    const mnt = mounts.find((m) => m.name === cfgVol.name);
    const cfgArg = (c.args ?? []).find((a) => a.startsWith("--config.file="));
    check(mnt && cfgArg === `--config.file=${mnt.mountPath}/execflow.yaml`, cw,
          `--config.file (${show(cfgArg)}) must point into the config mount (${show(mnt?.mountPath)})`);
  }

  // Grafana dashboards ConfigMap.
  const dash = objs.find((o) => o.kind === "ConfigMap" && o.metadata.labels?.grafana_dashboard === "1");
  if (check(dash, render, 'no ConfigMap labelled grafana_dashboard: "1"')) {
    const dw = `${render}: ${id(dash)}`;
    check(eq(Object.keys(dash.data ?? {}).sort(), dashboardFiles), dw,
          `keys ${show(Object.keys(dash.data ?? {}).sort())} differ from dashboards/*.json ${show(dashboardFiles)}`);
    for (const f of dashboardFiles) {
      const text = dash.data?.[f];
      if (text === undefined) continue;
      check(text === readFileSync(join(dashboardDir, f), "utf8"), dw,
            `${f} differs from dashboards/${f}`);
      try {
        JSON.parse(text);
      } catch (e) {
        check(false, dw, `${f} is not JSON: ${e.message}`);
      }
    }
    const size = Object.values(dash.data ?? {}).reduce((n, v) => n + Buffer.byteLength(v), 0);
    check(size < 1024 * 1024, dw, `${size} bytes of data: over the 1 MiB ConfigMap limit`);
  }
}

// The privileged overlay changes the security context and nothing else.
if (renders.base && renders.privileged) {
  const strip = (objs) =>
    objs.map((o) => {
      const c = structuredClone(o);
      if (c.kind === "DaemonSet") delete c.spec.template.spec.containers[0].securityContext;
      return c;
    });
  check(eq(strip(renders.base), strip(renders.privileged)), "privileged",
        "differs from base in more than the container's securityContext");
}

for (const f of failures) console.log(`FAIL ${f}`);
console.log(`kubernetes manifests: ${checks} checks, ${failures.length} failures`);
process.exitCode = failures.length ? 1 : 0;
