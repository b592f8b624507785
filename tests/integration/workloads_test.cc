// Workload attribution on real cgroups and network namespaces (issue 11):
// exec counts, TCP bytes and exec events land on the namespace, pod and
// container that the cgroup path and the kubelet's folders name.
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "exporter/collectors/cgroup_collector.h"
#include "exporter/collectors/exec_collector.h"
#include "exporter/collectors/tcp_collector.h"
#include "tests/integration/privileged.h"
#include "tests/integration/tcp_peers.h"
#include "tests/unit/fake_map_reader.h"

namespace execflow {
namespace {

namespace fs = std::filesystem;

std::string Cgroup2Root() {
  std::ifstream mi("/proc/self/mountinfo");
  std::stringstream text;
  text << mi.rdbuf();
  for (const std::string& m : Cgroup2Mounts(text.str())) {
    struct stat st;
    if (stat(m.c_str(), &st) == 0 && st.st_ino == 1) return m;
  }
  return "";
}

double Sum(const std::vector<prometheus::MetricFamily>& fams, const std::string& name,
           const std::vector<std::pair<std::string, std::string>>& match) {
  double t = 0;
  for (const auto& f : fams) {
    if (f.name != name) continue;
    for (const auto& m : f.metric) {
      bool all = true;
      for (const auto& [k, v] : match) {
        bool hit = false;
        for (const auto& l : m.label) hit = hit || (l.name == k && l.value == v);
        all = all && hit;
      }
      if (all) t += m.counter.value;
    }
  }
  return t;
}

// One container of the fake node: its cgroup and what the kubelet says of it.
struct Leaf {
  std::string cgroup;  // under the test's folder in the cgroup v2 hierarchy
  std::string k8s_namespace, pod, container;
};

class WorkloadsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EXECFLOW_REQUIRE_PRIVILEGED();
    root_ = Cgroup2Root();
    ASSERT_FALSE(root_.empty()) << "no cgroup v2 hierarchy mounted";
    top_ = "execflow-test-" + std::to_string(getpid());
    logs_ = fs::temp_directory_path() / ("execflow-kubelet-" + std::to_string(getpid()));
    fs::create_directories(logs_ / "containers");
    fs::create_directories(logs_ / "pods");
  }
  void TearDown() override {
    // Leaves first: a cgroup folder goes with rmdir once empty.
    if (!root_.empty() && fs::exists(fs::path(root_) / top_)) {
      std::vector<fs::path> dirs;
      for (const auto& e : fs::recursive_directory_iterator(fs::path(root_) / top_)) {
        if (e.is_directory()) dirs.push_back(e.path());
      }
      std::sort(dirs.rbegin(), dirs.rend());
      for (const auto& d : dirs) rmdir(d.c_str());
      rmdir((fs::path(root_) / top_).c_str());
    }
    fs::remove_all(logs_);
  }

  std::string Make(const Leaf& l) {
    const fs::path dir = fs::path(root_) / top_ / l.cgroup;
    fs::create_directories(dir);
    return dir.string();
  }

  // A child that moves itself into `cgroup`, execs /bin/true `execs` times and
  // sends `bytes` to port.
  int RunIn(const std::string& cgroup, int execs, uint64_t bytes, uint16_t port) {
    pid_t pid = fork();
    if (pid == 0) {
      std::ofstream procs(cgroup + "/cgroup.procs");
      procs << getpid() << std::flush;
      if (!procs) _exit(100);
      for (int i = 0; i < execs; ++i) {
        pid_t c = fork();
        if (c == 0) {
          execl("/bin/true", "true", static_cast<char*>(nullptr));
          _exit(127);
        }
        int st = 0;
        if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 0) _exit(101);
      }
      int fd = Connect("127.0.0.1", port);
      if (fd < 0 || !SendVarying(fd, bytes)) _exit(102);
      close(fd);
      _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  }

  std::string root_, top_;
  fs::path logs_;
};

TEST_F(WorkloadsTest, EachLayoutLandsOnItsNamespacePodAndContainer) {
  const std::string uid1 = "0a1b2c3d-0000-4000-8000-00000000000a", uid2 = "0a1b2c3d-0000-4000-8000-00000000000b";
  const std::string uid3 = "0a1b2c3d-0000-4000-8000-00000000000c", uid4 = "0a1b2c3d-0000-4000-8000-00000000000d";
  auto underscores = [](std::string s) {
    std::replace(s.begin(), s.end(), '-', '_');
    return s;
  };
  auto id = [](char c) { return std::string(63, c) + "1"; };
  const std::vector<Leaf> leaves{
      // kubelet's systemd driver, containerd and CRI-O
      {"kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + underscores(uid1) +
           ".slice/cri-containerd-" + id('a') + ".scope",
       "shop", "web-7d9f", "nginx"},
      {"kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + underscores(uid2) +
           ".slice/crio-" + id('b') + ".scope",
       "data", "db-0", "postgres"},
      // kubelet's cgroupfs driver (bare container ids)
      {"kubepods/burstable/pod" + uid3 + "/" + id('c'), "shop", "cart-5c4b", "app"},
      {"kubepods/pod" + uid4 + "/" + id('d'), "kube-system", "dns-1", "coredns"},
  };
  const std::vector<std::string> ids{id('a'), id('b'), id('c'), id('d')};
  const std::vector<std::string> uids{uid1, uid2, uid3, uid4};
  for (size_t i = 0; i < leaves.size(); ++i) {
    const Leaf& l = leaves[i];
    std::ofstream(logs_ / "containers" / (l.pod + "_" + l.k8s_namespace + "_" + l.container + "-" + ids[i] + ".log"));
    fs::create_directories(logs_ / "pods" / (l.k8s_namespace + "_" + l.pod + "_" + uids[i]) / l.container);
  }
  // Every unknown id walks cgroupfs again: the scrape right after the last
  // child must find the cgroups made since the previous walk. The test's
  // folder stands for the hierarchy's root, where the kubelet's tree starts.
  fs::create_directories(fs::path(root_) / top_);
  auto workloads = std::make_shared<WorkloadResolver>(
      ResolverOptions{root_ + "/" + top_, logs_.string(), std::chrono::milliseconds(0)});
  Config config;
  config.events.keep_last = 10000;
  auto exec = ExecCollector::Start(config, Transport::kRingbuf, workloads);
  ASSERT_TRUE(exec.has_value()) << exec.error().message;
  (*exec)->StartEvents();
  TcpConfig tcp_config;
  tcp_config.labels = {"dport", "namespace", "pod", "container"};
  auto tcp = TcpCollector::Start(tcp_config, Transport::kRingbuf, workloads);
  ASSERT_TRUE(tcp.has_value()) << tcp.error().message;
  (*tcp)->StartEvents();

  SinkServer server;
  for (const Leaf& l : leaves) ASSERT_EQ(RunIn(Make(l), 100, 500000, server.port()), 0) << l.cgroup;
  WaitFor([&] { return server.received() >= 4 * 500000; });
  ASSERT_EQ(server.received(), 4u * 500000);

  int errors = 0;
  const auto execs = (*exec)->Collect(&errors);
  const auto flows = (*tcp)->Collect(&errors);
  EXPECT_EQ(errors, 0);
  for (size_t i = 0; i < leaves.size(); ++i) {
    const Leaf& l = leaves[i];
    const std::vector<std::pair<std::string, std::string>> who{
        {"namespace", l.k8s_namespace}, {"pod", l.pod}, {"container", l.container}};
    EXPECT_EQ(Sum(execs, "execflow_execs_total", who), 100) << l.cgroup;
    auto with_port = who;
    with_port.push_back({"dport", std::to_string(server.port())});
    EXPECT_EQ(Sum(flows, "execflow_tcp_sent_bytes_total", with_port), 500000) << l.cgroup;
    size_t events = 0;
    WaitFor([&] {
      events = 0;
      for (const auto& r : (*exec)->events().Snapshot()) {
        events += r.k8s_namespace == l.k8s_namespace && r.pod == l.pod && r.container == l.container;
      }
      return events >= 100;
    });
    EXPECT_EQ(events, 100u) << "exec events of " << l.cgroup;
  }
  // (The node's other execs, outside the test's folder, are unresolved here.)
  if (::testing::Test::HasFailure()) {
    for (const auto* fams : {&execs, &flows}) {
      for (const auto& f : *fams) {
        if (f.name != "execflow_execs_total" && f.name != "execflow_tcp_sent_bytes_total") continue;
        for (const auto& m : f.metric) {
          std::string l;
          for (const auto& x : m.label) l += x.name + "=" + x.value + " ";
          std::cerr << f.name << " " << l << m.counter.value << "\n";
        }
      }
    }
  }
}

// A cgroup made after the resolver's last walk is not in it: it is not gone.
// Taking its keys as gone at the next scrape lost the workload of execs that
// ran in a new container (labelled as the host for good).
TEST_F(WorkloadsTest, ACgroupMadeAfterTheLastWalkIsNotGone) {
  WorkloadResolver r(ResolverOptions{root_, logs_.string(), std::chrono::hours(1)});
  struct stat st;
  ASSERT_EQ(stat(root_.c_str(), &st), 0);
  EXPECT_FALSE(r.Gone(st.st_ino, std::chrono::steady_clock::now())) << "the first call walks";
  const fs::path fresh = fs::path(root_) / top_;
  ASSERT_TRUE(fs::create_directories(fresh));
  ASSERT_EQ(stat(fresh.c_str(), &st), 0);
  EXPECT_FALSE(r.Gone(st.st_ino, std::chrono::steady_clock::now())) << "made after the walk: not gone";
  bool final = true;
  r.Resolve(st.st_ino, &final);
  EXPECT_FALSE(final) << "unknown until the next walk";
}

// Hundreds of containers gone between two scrapes: every one is seen gone in
// that scrape (their keys leave the kernel maps), not one per walk interval,
// which filled the exec map with the keys of gone containers. And one in the
// last walk that went since is gone too.
TEST_F(WorkloadsTest, EveryCgroupGoneBeforeTheReadIsGoneByOneWalk) {
  using Clock = std::chrono::steady_clock;
  std::vector<std::string> dirs;
  std::vector<uint64_t> ids;
  for (int i = 0; i < 5; ++i) {
    dirs.push_back(Make({"gone-" + std::to_string(i), "", "", ""}));
    struct stat st;
    ASSERT_EQ(stat(dirs.back().c_str(), &st), 0);
    ids.push_back(st.st_ino);
  }
  WorkloadResolver r(ResolverOptions{root_, logs_.string(), std::chrono::milliseconds(100)});
  EXPECT_FALSE(r.Gone(ids[0], Clock::now())) << "the first call walks and finds it";
  for (const auto& d : dirs) ASSERT_EQ(rmdir(d.c_str()), 0);
  const Clock::time_point read_at = Clock::now();
  WaitFor([&] { return r.Gone(ids[0], read_at); });  // once a walk is due again
  ASSERT_TRUE(r.Gone(ids[0], read_at));
  for (size_t i = 1; i < ids.size(); ++i) EXPECT_TRUE(r.Gone(ids[i], read_at)) << i << ": by the same walk";
  // Read after that walk: wait for the next one.
  const std::string fresh = Make({"made-after", "", "", ""});
  struct stat st;
  ASSERT_EQ(stat(fresh.c_str(), &st), 0);
  EXPECT_FALSE(r.Gone(st.st_ino, Clock::now())) << "made after the last walk: not gone";
}

// Each child unshares a network namespace with loopback up and connects
// 127.0.0.1:40500 to 127.0.0.1:7171 in it: the same 4-tuple twice.
class LoopbackInOwnNamespace {
 public:
  explicit LoopbackInOwnNamespace(uint64_t bytes) {
    if (pipe(to_) != 0 || pipe(from_) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      if (unshare(CLONE_NEWNET) != 0 || std::system("ip link set lo up") != 0) _exit(100);
      SinkServer server(AF_INET, "127.0.0.1", 7171);
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_storage me{}, peer{};
      socklen_t ml = SinkServer::Fill(&me, "127.0.0.1", 40500), pl = SinkServer::Fill(&peer, "127.0.0.1", 7171);
      if (!server.ok() || bind(fd, reinterpret_cast<sockaddr*>(&me), ml) != 0 ||
          connect(fd, reinterpret_cast<sockaddr*>(&peer), pl) != 0 || !SendVarying(fd, bytes)) {
        _exit(101);
      }
      WaitFor([&] { return server.received() >= bytes; });
      char c = 'r';
      if (write(from_[1], &c, 1) != 1 || read(to_[0], &c, 1) != 1) _exit(102);  // ready; wait to close
      close(fd);
      WaitFor([&] { return server.closed() >= 1; });  // the peer saw EOF and closed
      _exit(0);
    }
    char c;
    ok_ = pid_ > 0 && read(from_[0], &c, 1) == 1;
    struct stat st;
    if (ok_ && stat(("/proc/" + std::to_string(pid_) + "/ns/net").c_str(), &st) == 0) netns_ = st.st_ino;
  }
  ~LoopbackInOwnNamespace() { Close(); }
  bool ok() const { return ok_ && netns_ != 0; }
  uint32_t netns() const { return netns_; }
  int Close() {
    if (pid_ <= 0) return -1;
    char c = 'c';
    if (write(to_[1], &c, 1) != 1) return -1;
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  }

 private:
  int to_[2] = {-1, -1}, from_[2] = {-1, -1};
  pid_t pid_ = -1;
  bool ok_ = false;
  uint32_t netns_ = 0;
};

TEST(TcpNamespaces, IdenticalLoopbackFlowsInTwoNamespacesAreTwoFlowsAndOneCloseLeavesTheOther) {
  EXECFLOW_REQUIRE_PRIVILEGED();
  TcpConfig config;
  config.labels = {"saddr", "sport", "daddr", "dport"};
  auto c = TcpCollector::Start(config);
  ASSERT_TRUE(c.has_value()) << c.error().message;
  (*c)->StartEvents();
  LoopbackInOwnNamespace a(111111), b(222222);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_NE(a.netns(), b.netns());
  auto key = [](uint32_t netns) {
    tcp_flow_key k{};
    k.family = EXECFLOW_AF_INET;
    inet_pton(AF_INET, "127.0.0.1", k.saddr);
    inet_pton(AF_INET, "127.0.0.1", k.daddr);
    k.sport = 40500;
    k.dport = 7171;
    k.netns = netns;
    k.cgroup_id = CurrentCgroupId();  // the children's: they did not move
    return k;
  };
  ASSERT_TRUE((*c)->TracksFlow(key(a.netns())));
  ASSERT_TRUE((*c)->TracksFlow(key(b.netns())));
  const std::vector<std::pair<std::string, std::string>> tuple{
      {"saddr", "127.0.0.1"}, {"sport", "40500"}, {"daddr", "127.0.0.1"}, {"dport", "7171"}};
  int errors = 0;
  EXPECT_EQ(Sum((*c)->Collect(&errors), "execflow_tcp_sent_bytes_total", tuple), 333333);
  ASSERT_EQ(a.Close(), 0);
  WaitFor([&] { return !(*c)->TracksFlow(key(a.netns())); });
  EXPECT_FALSE((*c)->TracksFlow(key(a.netns()))) << "the closed flow's entry is taken";
  EXPECT_TRUE((*c)->TracksFlow(key(b.netns()))) << "the other namespace's flow is untouched";
  EXPECT_EQ(Sum((*c)->Collect(&errors), "execflow_tcp_sent_bytes_total", tuple), 333333)
      << "a's final total and b's live one";
  ASSERT_EQ(b.Close(), 0);
  EXPECT_EQ(errors, 0);
}

// Short-lived containers (a Job, a CI step): each cgroup is made, one exec
// runs in it, and it is removed, as fast as this loop goes, long before any
// scrape. Every exec keeps its container's name: the path was recorded in
// the kernel when the cgroup was made (bpf/cgroups.bpf.c). Without that
// record a walk of cgroupfs at the scrape finds none of them.
class ShortLivedContainers : public WorkloadsTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(ShortLivedContainers, EveryExecKeepsItsContainersName) {
  constexpr int kContainers = 100;
  Config config;
  config.exec.labels = {"uid", "container"};
  config.workloads.hook = GetParam();
  auto workloads = std::make_shared<WorkloadResolver>(ResolverOptions{"", logs_.string()});
  auto cgroups = CgroupCollector::Start(config.workloads, workloads);
  ASSERT_TRUE(cgroups.has_value()) << cgroups.error().message;
  ASSERT_TRUE(*cgroups) << "no cgroup_mkdir hook attached";
  ASSERT_EQ((*cgroups)->Programs().size(), 1u);
  EXPECT_EQ((*cgroups)->Programs()[0].attach_type, GetParam());
  auto exec = ExecCollector::Start(config, Transport::kRingbuf, workloads);
  ASSERT_TRUE(exec.has_value()) << exec.error().message;

  std::vector<std::string> ids;
  for (int i = 0; i < kContainers; ++i) {
    char id[65];
    snprintf(id, sizeof(id), "%012x%052x", 0xe0f1000 + i, 0);  // the short id (12 hex) differs
    ids.push_back(id);
    const std::string dir = Make({"libpod-" + ids.back() + ".scope", "", "", ""});
    pid_t pid = fork();
    if (pid == 0) {
      std::ofstream procs(dir + "/cgroup.procs");
      procs << getpid() << std::flush;
      if (!procs) _exit(100);
      execl("/bin/true", "true", static_cast<char*>(nullptr));
      _exit(127);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    ASSERT_EQ(rmdir(dir.c_str()), 0) << dir << ": " << strerror(errno);
  }
  EXPECT_EQ((*cgroups)->PathOf(0), "");

  int errors = 0;
  const auto execs = (*exec)->Collect(&errors);
  EXPECT_EQ(errors, 0);
  int named = 0;
  for (const std::string& id : ids) {
    const double n = Sum(execs, "execflow_execs_total", {{"container", id.substr(0, 12)}});
    EXPECT_EQ(n, 1) << id;
    named += n == 1;
  }
  EXPECT_EQ(named, kContainers);
  if (named != kContainers) {
    for (const auto& f : execs) {
      if (f.name != "execflow_execs_total") continue;
      for (const auto& m : f.metric) {
        std::string l;
        for (const auto& x : m.label) l += x.name + "=" + x.value + " ";
        std::cerr << f.name << " " << l << m.counter.value << "\n";
      }
    }
  }
}

// A path longer than the kernel's record holds is not recorded at all (cut,
// it would name another workload or none), and that is counted.
TEST_P(ShortLivedContainers, APathTooLongToRecordIsCountedNotCut) {
  Config config;
  config.exec.labels = {"uid", "container"};
  config.workloads.hook = GetParam();
  auto workloads = std::make_shared<WorkloadResolver>(ResolverOptions{"", logs_.string()});
  auto cgroups = CgroupCollector::Start(config.workloads, workloads);
  ASSERT_TRUE(cgroups.has_value() && *cgroups) << (cgroups ? "no hook" : cgroups.error().message);
  auto exec = ExecCollector::Start(config, Transport::kRingbuf, workloads);
  ASSERT_TRUE(exec.has_value()) << exec.error().message;
  const std::string id = "e0f2" + std::string(60, '0');
  const std::string dir = Make({std::string(200, 'x') + "/libpod-" + id + ".scope", "", "", ""});
  ASSERT_GT(dir.size() - root_.size(), 255u);
  struct stat st;
  ASSERT_EQ(stat(dir.c_str(), &st), 0);
  EXPECT_EQ((*cgroups)->PathOf(st.st_ino), "");
  int errors = 0;
  EXPECT_EQ(Sum((*cgroups)->Collect(&errors), "execflow_workload_paths_dropped_total", {}), 1);
  // Still here: a walk finds it.
  pid_t pid = fork();
  if (pid == 0) {
    std::ofstream(dir + "/cgroup.procs") << getpid() << std::flush;
    execl("/bin/true", "true", static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_EQ(Sum((*exec)->Collect(&errors), "execflow_execs_total", {{"container", id.substr(0, 12)}}), 1);
  EXPECT_EQ(errors, 0);
}

INSTANTIATE_TEST_SUITE_P(Hooks, ShortLivedContainers, ::testing::Values("tp_btf", "tracepoint"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace execflow
