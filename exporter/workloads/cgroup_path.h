#pragma once

#include <ostream>
#include <string>
#include <string_view>

namespace execflow {

// What a cgroup v2 path says about the process in it: the container and, for
// kubelet pods, the pod's UID. Empty fields: not a container (the host).
struct ContainerRef {
  std::string runtime;       // "containerd", "cri-o", "docker", "podman"; "" when unknown
  std::string container_id;  // the runtime's full hex id
  std::string pod_uid;       // "0a1b2c3d-...", kubelet pods only
  bool operator==(const ContainerRef&) const = default;
};
inline void PrintTo(const ContainerRef& x, std::ostream* os) { *os << x.runtime << "/" << x.container_id << "/" << x.pod_uid; }

// Parses the layouts of the common runtimes and kubelet cgroup drivers:
//   kubelet, systemd driver: /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-
//       pod<uid with _>.slice/cri-containerd-<id>.scope (crio-<id>.scope, docker-<id>.scope)
//   kubelet, cgroupfs driver: /kubepods/burstable/pod<uid>/<id>
//   podman: /libpod_parent/libpod-<id>, /machine.slice/libpod-<id>.scope[/container]
//   docker: /docker/<id>, /system.slice/docker-<id>.scope
// A pod is named only below kubelet folders from the root, its container directly in it
// (kind: as seen in the node's cgroup namespace); elsewhere the outermost container wins,
// with no pod, so folders made in a container or delegated user slice borrow no names.
// Helper scopes (conmon) are not containers; malformed parts are ignored.
ContainerRef ParseCgroupPath(std::string_view path);

}  // namespace execflow
