// Turns the DaemonSet of a rendered kustomization into what `podman kube play` runs:
// a Pod with the DaemonSet's pod template as is, plus the config ConfigMap.
//   node deploy_kubernetes_pod.mjs RENDERED.yaml IMAGE HOST_PORT SECCOMP_PROFILE OUT_DIR HOST_DIR
// Changed, and only this: the image (the one the test built), a hostPort on 127.0.0.1
// (the pod's port must be reachable from the test), when SECCOMP_PROFILE is not "-", a
// per-container seccomp annotation (podman's RuntimeDefault predates CAP_BPF; see
// deploy_lib.sh seccomp_profile), and the host's /sys/fs/bpf and /run/execflow moved
// under HOST_DIR (bpffs/ and run/: the test's own, so the pod pins nothing on the host). Fields podman ignores (tolerations, priorityClassName,
// nodeSelector, updateStrategy) stay in place.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import YAML from "yaml";

const [rendered, image, hostPort, seccomp, out, hostDir] = process.argv.slice(2);
const docs = YAML.parseAllDocuments(readFileSync(rendered, "utf8")).map((d) => d.toJS());
const ds = docs.find((o) => o?.kind === "DaemonSet");
if (!ds) throw new Error(`${rendered}: no DaemonSet`);
const spec = structuredClone(ds.spec.template.spec);
if (spec.containers.length !== 1) throw new Error("expected one container");
const c = spec.containers[0];
c.image = image;
const port = c.ports.find((p) => p.name === "metrics");
port.hostPort = Number(hostPort);
port.hostIP = "127.0.0.1";
const moved = { "/sys/fs/bpf": join(hostDir, "bpffs"), "/run/execflow": join(hostDir, "run") };
for (const path of Object.keys(moved)) {
  const v = spec.volumes.find((v) => v.hostPath?.path === path);
  if (!v) throw new Error(`the DaemonSet mounts no hostPath ${path}`);
  v.hostPath.path = moved[path];
}
const annotations = { ...(ds.spec.template.metadata.annotations ?? {}) };
if (seccomp !== "-")
  annotations[`container.seccomp.security.alpha.kubernetes.io/${c.name}`] = `localhost/${seccomp}`;
const pod = {
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: `${ds.metadata.name}-kube-e2e`, labels: ds.spec.template.metadata.labels, annotations },
  spec,
};
const cmName = spec.volumes.find((v) => v.configMap)?.configMap.name;
const cm = docs.find((o) => o?.kind === "ConfigMap" && o.metadata.name === cmName);
if (!cm) throw new Error(`no ConfigMap ${cmName}`);
writeFileSync(join(out, "pod.yaml"), YAML.stringify(pod));
writeFileSync(join(out, "configmap.yaml"), YAML.stringify(cm));
console.log(`${pod.metadata.name} container=${c.name} configmap=${cmName}`);
