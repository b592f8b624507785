#include "exporter/workloads/cgroup_path.h"

#include <gtest/gtest.h>

namespace execflow {
namespace {

const std::string kId = "4f3c2b1a00000000000000000000000000000000000000000000000000c0ffee";
const std::string kUid = "0a1b2c3d-0000-4000-8000-00000000000a";

TEST(ParseCgroupPath, KubeletSystemdDriverContainerd) {
  EXPECT_EQ(ParseCgroupPath("/kubepods.slice/kubepods-burstable.slice/"
                            "kubepods-burstable-pod0a1b2c3d_0000_4000_8000_00000000000a.slice/"
                            "cri-containerd-" + kId + ".scope"),
            (ContainerRef{"containerd", kId, kUid}));
}

TEST(ParseCgroupPath, KubeletSystemdDriverGuaranteedPodCrio) {
  EXPECT_EQ(ParseCgroupPath("/kubepods.slice/kubepods-pod0a1b2c3d_0000_4000_8000_00000000000a.slice/"
                            "crio-" + kId + ".scope"),
            (ContainerRef{"cri-o", kId, kUid}));
}

TEST(ParseCgroupPath, KubeletCgroupfsDriver) {
  EXPECT_EQ(ParseCgroupPath("/kubepods/besteffort/pod" + kUid + "/" + kId),
            (ContainerRef{"", kId, kUid}));
  EXPECT_EQ(ParseCgroupPath("/kubepods/pod" + kUid + "/" + kId), (ContainerRef{"", kId, kUid}));
}

TEST(ParseCgroupPath, PodmanAndDocker) {
  EXPECT_EQ(ParseCgroupPath("/libpod_parent/libpod-" + kId), (ContainerRef{"podman", kId, ""}));
  EXPECT_EQ(ParseCgroupPath("/machine.slice/libpod-" + kId + ".scope/container"),
            (ContainerRef{"podman", kId, ""}));
  EXPECT_EQ(ParseCgroupPath("/docker/" + kId), (ContainerRef{"docker", kId, ""}));
  EXPECT_EQ(ParseCgroupPath("/system.slice/docker-" + kId + ".scope"), (ContainerRef{"docker", kId, ""}));
}

TEST(ParseCgroupPath, KindPodsAreNamedAsSeenFromInsideTheNode) {
  const std::string pod = "kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/"
                          "kubelet-kubepods-besteffort-pod0a1b2c3d_0000_4000_8000_00000000000a.slice/";
  EXPECT_EQ(ParseCgroupPath("/" + pod + "cri-containerd-" + kId + ".scope"), (ContainerRef{"containerd", kId, kUid}));
  // The whole hierarchy's path: the kind node's own container holds it.
  const std::string node(64, 'a');
  EXPECT_EQ(ParseCgroupPath("/system.slice/docker-" + node + ".scope/" + pod + "cri-containerd-" + kId + ".scope"),
            (ContainerRef{"docker", node, ""}));
}

// A process that may make cgroups tries to pass for another pod's container.
TEST(ParseCgroupPath, FoldersMadeInsideAContainerOrAUserSliceCannotBorrowAnotherPodsNames) {
  const std::string victim(64, 'b');
  const std::string victim_pod = "kubepods-pod0a1b2c3d_0000_4000_8000_00000000000b.slice/cri-containerd-" + victim + ".scope";
  const std::string own = "/kubepods.slice/kubepods-pod0a1b2c3d_0000_4000_8000_00000000000a.slice/cri-containerd-" + kId + ".scope";
  // Nested in its own container (systemd in a pod, a delegated subtree): still its own.
  EXPECT_EQ(ParseCgroupPath(own + "/kubepods.slice/" + victim_pod), (ContainerRef{"containerd", kId, kUid}));
  EXPECT_EQ(ParseCgroupPath(own + "/cri-containerd-" + victim + ".scope"), (ContainerRef{"containerd", kId, kUid}));
  EXPECT_EQ(ParseCgroupPath(own + "/init.scope"), (ContainerRef{"containerd", kId, kUid}));
  // cgroupfs driver, nested the same way.
  EXPECT_EQ(ParseCgroupPath("/kubepods/pod" + kUid + "/" + kId + "/kubepods/pod0a1b2c3d-0000-4000-8000-00000000000b/" + victim),
            (ContainerRef{"", kId, kUid}));
  // A delegated user slice: a container id at most, never a pod.
  EXPECT_EQ(ParseCgroupPath("/user.slice/user-1000.slice/user@1000.service/kubepods.slice/" + victim_pod),
            (ContainerRef{"containerd", victim, ""}));
  // A pod folder whose container is not directly in it names no pod.
  EXPECT_EQ(ParseCgroupPath("/kubepods/pod" + kUid + "/extra/" + kId), (ContainerRef{"", kId, ""}));
  // Podman's container that nests another runtime's folder: the outer one.
  EXPECT_EQ(ParseCgroupPath("/machine.slice/libpod-" + kId + ".scope/container/docker-" + victim + ".scope"),
            (ContainerRef{"podman", kId, ""}));
}

TEST(ParseCgroupPath, HostAndHelperScopesAreNotContainers) {
  EXPECT_EQ(ParseCgroupPath("/"), ContainerRef{});
  EXPECT_EQ(ParseCgroupPath("/system.slice/sshd.service"), ContainerRef{});
  EXPECT_EQ(ParseCgroupPath("/user.slice/user-0.slice/session-1.scope"), ContainerRef{});
  EXPECT_EQ(ParseCgroupPath("/machine.slice/libpod-conmon-" + kId + ".scope"), ContainerRef{});
  EXPECT_EQ(ParseCgroupPath("/system.slice/crio-conmon-" + kId + ".scope"), ContainerRef{});
  // A pod's own cgroup (no container below it yet) names the pod only.
  EXPECT_EQ(ParseCgroupPath("/kubepods/pod" + kUid), ContainerRef{});
}

TEST(ParseCgroupPath, MalformedPartsAreIgnored) {
  EXPECT_EQ(ParseCgroupPath("/kubepods/podnot-a-uid/" + kId), (ContainerRef{"", kId, ""}));
  EXPECT_EQ(ParseCgroupPath("/docker/" + kId.substr(1)), ContainerRef{});
  EXPECT_EQ(ParseCgroupPath("/docker/" + std::string(63, 'a') + "G"), ContainerRef{});
  EXPECT_EQ(ParseCgroupPath("/machine.slice/libpod-" + kId + ".scop"), ContainerRef{});
  EXPECT_EQ(ParseCgroupPath("//kubepods.slice/kubepods-pod.slice/cri-containerd-.scope"), ContainerRef{});
  EXPECT_EQ(ParseCgroupPath(std::string(100000, '/')), ContainerRef{});
}

}  // namespace
}  // namespace execflow
