#include "exporter/workloads/resolver.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include <cstdio>

#include "exporter/common/utf8.h"

namespace execflow {
namespace {

namespace fs = std::filesystem;

const std::string kId(64, 'c');
const std::string kId2 = std::string(63, 'd') + "e";
const std::string kUid = "0a1b2c3d-0000-4000-8000-00000000000a";
const std::string kUid2 = "0a1b2c3d-0000-4000-8000-00000000000b";

// A cgroup tree and kubelet folders in a temporary folder: a folder's inode
// number is its id, as with cgroupfs.
class ResolverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("execflow-resolver-" + std::to_string(getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "cgroup");
    fs::create_directories(root_ / "log/containers");
    fs::create_directories(root_ / "log/pods");
  }
  void TearDown() override { fs::remove_all(root_); }

  uint64_t Cgroup(const std::string& path) {
    fs::create_directories(root_ / "cgroup" / path);
    struct stat st;
    EXPECT_EQ(stat((root_ / "cgroup" / path).c_str(), &st), 0);
    return st.st_ino;
  }
  void ContainerLog(const std::string& name) { std::ofstream(root_ / "log/containers" / name) << ""; }
  void PodDir(const std::string& name) { fs::create_directories(root_ / "log/pods" / name / "app"); }
  WorkloadResolver Resolver() {
    return WorkloadResolver({(root_ / "cgroup").string(), (root_ / "log").string(), std::chrono::milliseconds(0)});
  }

  fs::path root_;
};

TEST_F(ResolverTest, NamesKubernetesContainersFromTheKubeletFolders) {
  const uint64_t systemd = Cgroup("kubepods.slice/kubepods-burstable.slice/"
                                  "kubepods-burstable-pod0a1b2c3d_0000_4000_8000_00000000000a.slice/"
                                  "cri-containerd-" + kId + ".scope");
  const uint64_t cgroupfs = Cgroup("kubepods/besteffort/pod" + kUid2 + "/" + kId2);
  ContainerLog("web-7d9f_shop_nginx-" + kId + ".log");
  ContainerLog("db-0_data_postgres-" + kId2 + ".log");
  auto r = Resolver();
  EXPECT_EQ(r.Resolve(systemd), (Workload{"shop", "web-7d9f", "nginx"}));
  EXPECT_EQ(r.Resolve(cgroupfs), (Workload{"data", "db-0", "postgres"}));
  EXPECT_EQ(r.unresolved(), 0u);
}

TEST_F(ResolverTest, PodWithoutAContainerLogIsNamedByItsPodFolderAndTheContainerId) {
  const uint64_t sandbox = Cgroup("kubepods.slice/kubepods-pod0a1b2c3d_0000_4000_8000_00000000000a.slice/"
                                  "crio-" + kId + ".scope");
  PodDir("shop_web-7d9f_" + kUid);
  auto r = Resolver();
  EXPECT_EQ(r.Resolve(sandbox), (Workload{"shop", "web-7d9f", kId.substr(0, 12)}));
}

TEST_F(ResolverTest, ContainersOutsideKubernetesAreTheirShortIdAndTheHostIsEmpty) {
  const uint64_t podman = Cgroup("machine.slice/libpod-" + kId + ".scope/container");
  const uint64_t host = Cgroup("system.slice/sshd.service");
  auto r = Resolver();
  EXPECT_EQ(r.Resolve(podman), (Workload{"", "", kId.substr(0, 12)}));
  EXPECT_EQ(r.Resolve(host), Workload{});
  struct stat st;
  ASSERT_EQ(stat((root_ / "cgroup").c_str(), &st), 0);
  EXPECT_EQ(r.Resolve(st.st_ino), Workload{});
}

TEST_F(ResolverTest, KubeletFoldersThatAppearLaterAreRead) {
  const uint64_t id = Cgroup("kubepods/pod" + kUid + "/" + kId);
  auto r = Resolver();
  EXPECT_EQ(r.Resolve(id), (Workload{"", "", kId.substr(0, 12)}));
  ContainerLog("web-7d9f_shop_nginx-" + kId + ".log");
  EXPECT_EQ(r.Resolve(id), (Workload{"shop", "web-7d9f", "nginx"}));
}

TEST_F(ResolverTest, NewCgroupsAreFoundAndRemovedOnesStillNamedForTheirFinalTotals) {
  auto r = Resolver();
  const uint64_t later = Cgroup("docker/" + kId);
  EXPECT_EQ(r.Resolve(later), (Workload{"", "", kId.substr(0, 12)}));
  fs::remove(root_ / "cgroup/docker" / kId);
  bool final = true;
  EXPECT_EQ(r.Resolve(later + 1000000, &final), Workload{});  // an unknown id walks again
  EXPECT_FALSE(final) << "an id no walk found may be found later";
  EXPECT_EQ(r.unresolved(), 1u);
  EXPECT_EQ(r.Resolve(later, &final), (Workload{"", "", kId.substr(0, 12)}))
      << "a removed cgroup keeps its workload for a while: its final totals keep their labels";
  EXPECT_TRUE(final);
  EXPECT_FALSE(r.Gone(later, std::chrono::steady_clock::now())) << "a tree that is not the whole hierarchy never says gone";
}

TEST_F(ResolverTest, ACgroupGoneBeforeAnyWalkIsNamedFromThePathRecordedAtItsMaking) {
  auto r = Resolver();
  std::vector<uint64_t> asked;
  r.LearnPathsFrom([&](uint64_t id) -> std::string {
    asked.push_back(id);
    return id == 77 ? "/machine.slice/libpod-" + kId + ".scope" : "";
  });
  const uint64_t walked = Cgroup("docker/" + kId2);
  bool final = false;
  EXPECT_EQ(r.Resolve(77, &final), (Workload{"", "", kId.substr(0, 12)}));
  EXPECT_TRUE(final);
  EXPECT_EQ(r.Resolve(walked), (Workload{"", "", kId2.substr(0, 12)}));
  EXPECT_EQ(r.Resolve(78, &final), Workload{});
  EXPECT_FALSE(final);
  EXPECT_EQ(r.unresolved(), 1u);
  // Asked once per id that has no name yet: 77 is cached after the first answer.
  EXPECT_EQ(r.Resolve(77), (Workload{"", "", kId.substr(0, 12)}));
  EXPECT_EQ(asked, (std::vector<uint64_t>{77, walked, 78}));
  r.LearnPathsFrom(nullptr);
  EXPECT_EQ(r.Resolve(79), Workload{});
}

// A pod already named gets a new container (a restart, an ephemeral debug
// container): its own log file names it once it appears, not the pod's folder.
TEST_F(ResolverTest, ANewContainerInAKnownPodIsNamedByItsOwnLog) {
  const std::string pod = "kubepods/pod" + kUid + "/";
  PodDir("shop_web-7d9f_" + kUid);
  ContainerLog("web-7d9f_shop_nginx-" + kId + ".log");
  const uint64_t first = Cgroup(pod + kId);
  auto r = Resolver();
  EXPECT_EQ(r.Resolve(first), (Workload{"shop", "web-7d9f", "nginx"}));
  const uint64_t added = Cgroup(pod + kId2);
  bool final = true;
  EXPECT_EQ(r.Resolve(added, &final), (Workload{"shop", "web-7d9f", kId2.substr(0, 12)}));
  EXPECT_FALSE(final) << "its log file may still come";
  ContainerLog("web-7d9f_shop_debugger-" + kId2 + ".log");
  EXPECT_EQ(r.Resolve(added, &final), (Workload{"shop", "web-7d9f", "debugger"}));
  EXPECT_TRUE(final);
}

// Kubernetes names go to containers in a pod only: the same container id in
// a folder outside the kubelet's tree gets its short id, never the pod's names.
TEST_F(ResolverTest, AContainerIdOutsideThePodTreeGetsNoKubernetesNames) {
  ContainerLog("web-7d9f_shop_nginx-" + kId + ".log");
  PodDir("shop_web-7d9f_" + kUid);
  const uint64_t real = Cgroup("kubepods/pod" + kUid + "/" + kId);
  const uint64_t copy = Cgroup("user.slice/user-1000.slice/user@1000.service/kubepods/pod" + kUid + "/" + kId);
  auto r = Resolver();
  EXPECT_EQ(r.Resolve(real), (Workload{"shop", "web-7d9f", "nginx"}));
  EXPECT_EQ(r.Resolve(copy), (Workload{"", "", kId.substr(0, 12)}));
}

// Hundreds of short containers a second: the names of gone cgroups are kept
// for their final totals, but never more than max_cached entries.
TEST_F(ResolverTest, NamesOfGoneCgroupsAreBounded) {
  WorkloadResolver r({(root_ / "cgroup").string(), (root_ / "log").string(), std::chrono::milliseconds(0), 2});
  r.LearnPathsFrom([](uint64_t id) -> std::string {
    if (id < 100 || id >= 105) return "";
    char cid[65];
    std::snprintf(cid, sizeof(cid), "%064llx", static_cast<unsigned long long>(id));
    return "/machine.slice/libpod-" + std::string(cid) + ".scope";
  });
  for (uint64_t id = 100; id < 105; ++id) r.Resolve(id);
  EXPECT_EQ(r.Named().size(), 5u) << "no walk yet: none is known to be gone";
  const uint64_t here = Cgroup("system.slice");
  r.Resolve(here + 1000000);  // unknown everywhere: walks, which misses the five
  EXPECT_EQ(r.Named().size(), 2u);
}

TEST(KubeletNames, IgnoresNamesThatDoNotFollowTheLayout) {
  KubeletNames n;
  n.Load({"web_shop_nginx-" + kId + ".log", "a_b_c_d-" + kId2 + ".log", "web_shop_nginx-short.log",
          "web_shop_nginx_" + kId + ".log", "nginx-" + kId + ".log"},
         {"shop_web_" + kUid, "shop_web", "__" + kUid2});
  EXPECT_EQ(n.Name({"", kId, kUid}), (Workload{"shop", "web", "nginx"}));
  EXPECT_EQ(n.Name({"", kId, ""}), Workload{}) << "a container in no pod";
  EXPECT_EQ(n.Name({"", kId2, kUid2}), Workload{});
  EXPECT_EQ(n.Name({"", "", kUid}), (Workload{"shop", "web", ""}));
  EXPECT_EQ(n.Name({"", "", kUid2}), Workload{});
}

// Prometheus rejects a whole scrape over one label value that is not UTF-8,
// so folder names become valid label values whatever bytes they hold.
TEST(KubeletNames, NamesAreValidLabelValuesWhateverTheFolderHolds) {
  KubeletNames n;
  n.Load({"we\xff" "b_sh\x01op_ngi\x7fnx-" + kId + ".log"}, {"caf\xc3\xa9\xc3_p\x1b[31mod_" + kUid});
  EXPECT_EQ(n.Name({"", kId, kUid}), (Workload{"sh\uFFFDop", "we\uFFFDb", "ngi\uFFFDnx"}));
  EXPECT_EQ(n.Name({"", "", kUid}), (Workload{"caf\u00E9\uFFFD", "p\uFFFD[31mod", ""}));
}

TEST(LabelValue, ReplacesInvalidBytesAndControlsAndKeepsTheRest) {
  EXPECT_EQ(LabelValue("plain-name.1"), "plain-name.1");
  EXPECT_EQ(LabelValue("\u00E9\u4E2D\U0001F600"), "\u00E9\u4E2D\U0001F600");
  EXPECT_EQ(LabelValue("a\tb\nc\x7f"), "a\uFFFDb\uFFFDc\uFFFD");
  EXPECT_EQ(LabelValue("\xc2\x85"), "\uFFFD") << "C1 control (NEL)";
  EXPECT_EQ(LabelValue("\xc0\xaf"), "\uFFFD\uFFFD") << "overlong '/'";
  EXPECT_EQ(LabelValue("\xed\xa0\x80"), "\uFFFD\uFFFD\uFFFD") << "a surrogate";
  EXPECT_EQ(LabelValue("\xe4\xb8"), "\uFFFD\uFFFD") << "cut short";
  EXPECT_EQ(LabelValue(std::string("a\0b", 3)), "a\uFFFDb");
}

TEST(Cgroup2Mounts, FindsCgroup2MountPointsAndUnescapesThem) {
  const std::string mountinfo =
      "24 1 0:22 / /sys rw,nosuid - sysfs sysfs rw\n"
      "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate\n"
      "42 31 0:39 / /sys/fs/cgroup/pids rw shared:9 - cgroup cgroup rw,pids\n"
      "90 80 0:38 / /host/sys\\040fs/cgroup ro master:3 - cgroup2 cgroup2 rw\n";
  EXPECT_EQ(Cgroup2Mounts(mountinfo),
            (std::vector<std::string>{"/sys/fs/cgroup/unified", "/host/sys fs/cgroup"}));
}

TEST(Cgroup2Mounts, SkipsLinesItCannotReadAndUndoesEveryEscape) {
  const std::string mountinfo =
      "24 1 0:22 / /sys rw,nosuid - sysfs sysfs rw\n"
      "not a mount\n"
      "41 31 0:38 / /truncated rw\n"
      "90 80 0:38 / /a\\011b\\012c\\134d ro - cgroup2 cgroup2 rw\n"
      "91 80 0:38 / /last rw - cgroup2 cgroup2 rw";  // no final newline
  EXPECT_EQ(Cgroup2Mounts(mountinfo), (std::vector<std::string>{"/a\tb\nc\\d", "/last"}));
  EXPECT_EQ(Cgroup2Mounts(""), std::vector<std::string>{});
}

}  // namespace
}  // namespace execflow
