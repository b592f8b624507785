#include "exporter/collectors/exec_collector.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "tests/integration/privileged.h"
#include "tests/unit/fake_map_reader.h"

namespace execflow {
namespace {

// fork + exec `path` n times; true if every child exited 0.
bool ExecTimes(const char* path, int n) {
  for (int i = 0; i < n; ++i) {
    pid_t pid = fork();
    if (pid < 0) return false;
    if (pid == 0) {
      execl(path, path, static_cast<char*>(nullptr));
      _exit(127);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return false;
  }
  return true;
}

double Value(const std::vector<prometheus::MetricFamily>& fams, const std::string& name,
             const std::vector<std::pair<std::string, std::string>>& labels) {
  const auto* m = FindSample(fams, name, labels);
  return m ? m->counter.value + m->gauge.value : 0;
}

struct Mode {
  std::string hook;
  Transport transport;
};
void PrintTo(const Mode& m, std::ostream* os) { *os << m.hook << "/" << TransportName(m.transport); }

class ExecCollectorTest : public ::testing::TestWithParam<Mode> {
 protected:
  void SetUp() override {
    EXECFLOW_REQUIRE_PRIVILEGED();
    Config config;
    config.exec.labels = {"uid"};
    config.exec.hook = GetParam().hook;
    config.events.keep_last = 100000;
    auto c = ExecCollector::Start(config, GetParam().transport);
    ASSERT_TRUE(c.has_value()) << c.error().message;
    (*c)->StartEvents();
    collector_ = std::move(*c);
  }

  std::vector<prometheus::MetricFamily> Collect() {
    int errors = 0;
    auto fams = collector_->Collect(&errors);
    EXPECT_EQ(errors, 0);
    return fams;
  }

  // Waits (bounded) until the ring buffer delivered `want` events matching.
  size_t WaitForEvents(uint32_t uid, const std::string& filename, size_t want) {
    size_t seen = 0;
    WaitFor([&] {
      seen = 0;
      for (const auto& r : collector_->events().Snapshot()) seen += r.uid == uid && r.filename == filename;
      return seen >= want;
    });
    return seen;
  }

  std::unique_ptr<ExecCollector> collector_;
};

TEST_P(ExecCollectorTest, UsesTheForcedHook) {
  const auto& progs = collector_->Programs();
  ASSERT_EQ(progs.size(), 5u);
  EXPECT_EQ(progs[0].attach_type, GetParam().hook);
  EXPECT_EQ(progs[0].hook, GetParam().hook == "tp_btf" ? "sched_process_exec" : "sched/sched_process_exec");
  // The failure hooks: sys_enter keeps what was asked for, sys_exit has the result.
  EXPECT_EQ(progs[1].hook, "syscalls/sys_enter_execve");
  EXPECT_EQ(progs[2].hook, "syscalls/sys_enter_execveat");
  EXPECT_EQ(progs[3].hook, "syscalls/sys_exit_execve");
  EXPECT_EQ(progs[4].hook, "syscalls/sys_exit_execveat");
  EXPECT_TRUE(collector_->Ready().has_value());
  auto fams = Collect();
  EXPECT_EQ(Value(fams, "execflow_bpf_program_info",
                  {{"program", progs[0].program}, {"hook", progs[0].hook}, {"attach_type", GetParam().hook}}),
            1);
}

TEST_P(ExecCollectorTest, TwoHundredExecsCountExactlyTwoHundredWithOneEventEach) {
  const uint32_t uid = UnusedUid();
  const std::string label = std::to_string(uid);
  const double before = Value(Collect(), "execflow_execs_total", {{"uid", label}});
  ASSERT_EQ(RunAs(uid, uid, [] { return ExecTimes("/bin/true", 200); }), 0);
  auto fams = Collect();
  EXPECT_EQ(Value(fams, "execflow_execs_total", {{"uid", label}}) - before, 200);
  EXPECT_EQ(WaitForEvents(uid, "/bin/true", 200), 200u);
  for (const auto& r : collector_->events().Snapshot()) {
    if (r.uid != uid) continue;
    EXPECT_EQ(r.gid, uid);
    EXPECT_EQ(r.comm, "true");
    EXPECT_GT(r.pid, 0u);
    EXPECT_GT(r.ppid, 0u);
    EXPECT_NE(r.pid, r.ppid);
    EXPECT_GT(r.cgroup_id, 0u);
  }
}

TEST_P(ExecCollectorTest, FiftyMissingFileExecvesCountExactlyFiftyEnoent) {
  const uint32_t uid = UnusedUid();
  ASSERT_EQ(RunAs(uid, uid,
                  [] {
                    for (int i = 0; i < 50; ++i) {
                      execl("/nonexistent/execflow-test", "x", static_cast<char*>(nullptr));
                      if (errno != ENOENT) return false;
                    }
                    return true;
                  }),
            0);
  auto fams = Collect();
  const std::string label = std::to_string(uid);
  EXPECT_EQ(Value(fams, "execflow_exec_failures_total", {{"uid", label}, {"errno", "ENOENT"}}), 50);
  EXPECT_EQ(Value(fams, "execflow_execs_total", {{"uid", label}}), 0);
}

TEST_P(ExecCollectorTest, ExecveatFailuresAreCountedPerErrno) {
  const uint32_t uid = UnusedUid();
  ASSERT_EQ(RunAs(uid, uid,
                  [] {
                    const char* argv[] = {"x", nullptr};
                    for (int i = 0; i < 30; ++i) {
                      syscall(SYS_execveat, AT_FDCWD, "/nonexistent/execflow-test", argv, nullptr, 0);
                      if (errno != ENOENT) return false;
                    }
                    // /etc/passwd is not executable: EACCES.
                    for (int i = 0; i < 20; ++i) {
                      syscall(SYS_execveat, AT_FDCWD, "/etc/passwd", argv, nullptr, 0);
                      if (errno != EACCES) return false;
                    }
                    return true;
                  }),
            0);
  auto fams = Collect();
  const std::string label = std::to_string(uid);
  EXPECT_EQ(Value(fams, "execflow_exec_failures_total", {{"uid", label}, {"errno", "ENOENT"}}), 30);
  EXPECT_EQ(Value(fams, "execflow_exec_failures_total", {{"uid", label}, {"errno", "EACCES"}}), 20);
}

// tp_btf with the ring buffer, the classic tracepoint with the perf buffer.
INSTANTIATE_TEST_SUITE_P(Hooks, ExecCollectorTest,
                         ::testing::Values(Mode{"tp_btf", Transport::kRingbuf},
                                           Mode{"tracepoint", Transport::kPerfbuf}),
                         [](const auto& info) { return info.param.hook; });

TEST(ExecCollectorAuto, PrefersTpBtf) {
  EXECFLOW_REQUIRE_PRIVILEGED();
  auto c = ExecCollector::Start(Config{});
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ((*c)->Programs()[0].attach_type, "tp_btf");
  // Nothing before tp_btf was refused; this kernel refuses the failure hook's
  // fexit (EPERM), so failures fall back to the syscalls tracepoints.
  for (const auto& r : (*c)->rejected_hooks()) EXPECT_EQ(r.rfind("exec failures: fexit: ", 0), 0u) << r;
  EXPECT_EQ((*c)->Programs().back().attach_type, "tracepoint");
}

TEST(ExecCollectorOptions, FailuresOffAttachesOnlyTheExecProgram) {
  EXECFLOW_REQUIRE_PRIVILEGED();
  Config config;
  config.exec.labels = {"uid"};
  config.exec.failures_hook = "off";
  config.events.enabled = false;
  auto c = ExecCollector::Start(config);
  ASSERT_TRUE(c.has_value()) << c.error().message;
  ASSERT_EQ((*c)->Programs().size(), 1u);
  const uint32_t uid = UnusedUid();
  ASSERT_EQ(RunAs(uid, uid, [] { return ExecTimes("/bin/true", 5); }), 0);
  int errors = 0;
  auto fams = (*c)->Collect(&errors);
  EXPECT_EQ(Value(fams, "execflow_execs_total", {{"uid", std::to_string(uid)}}), 5);
  EXPECT_EQ((*c)->events_delivered(), 0u);
  for (const auto& f : fams) EXPECT_NE(f.name, "execflow_exec_failures_total");
}

TEST(ExecCollectorOptions, FullUidMapCountsTheRestAsOther) {
  EXECFLOW_REQUIRE_PRIVILEGED();
  Config config;
  config.exec.labels = {"uid"};
  config.exec.max_uids = 1;
  config.events.enabled = false;
  auto c = ExecCollector::Start(config);
  ASSERT_TRUE(c.has_value()) << c.error().message;
  const uint32_t a = UnusedUid(), b = UnusedUid();
  ASSERT_EQ(RunAs(a, a, [] { return ExecTimes("/bin/true", 10); }), 0);
  ASSERT_EQ(RunAs(b, b, [] { return ExecTimes("/bin/true", 10); }), 0);
  int errors = 0;
  auto fams = (*c)->Collect(&errors);
  // One UID fits; every exec of the other UIDs, ours included, lands in "other".
  const double in_map = Value(fams, "execflow_execs_total", {{"uid", std::to_string(a)}}) +
                        Value(fams, "execflow_execs_total", {{"uid", std::to_string(b)}});
  const double other = Value(fams, "execflow_execs_total", {{"uid", "other"}});
  EXPECT_TRUE(in_map == 0 || in_map == 10) << in_map;
  EXPECT_GE(other, 20 - in_map);
  EXPECT_EQ(Value(fams, "execflow_bpf_map_entries", {{"map", "exec_counts"}}), 1);
  EXPECT_EQ(Value(fams, "execflow_bpf_map_update_failures_total", {{"map", "exec_counts"}}), other);
}

double SumOf(const std::vector<prometheus::MetricFamily>& fams, const std::string& name) {
  double t = 0;
  for (const auto& f : fams) {
    if (f.name != name) continue;
    for (const auto& m : f.metric) t += m.counter.value;
  }
  return t;
}

class ExecCollectorPressure : public ::testing::TestWithParam<Transport> {};

TEST_P(ExecCollectorPressure, FullBufferDropsEventsCountsThemAndNeverTheExecs) {
  EXECFLOW_REQUIRE_PRIVILEGED();
  // The consumer writes each event to a FIFO nobody reads: once the pipe (one
  // page, F_SETPIPE_SZ's least) is full it blocks, and the one-page buffer behind
  // it fills up: a few dozen events, so 200 execs must drop some.
  char dir[] = "/tmp/execflow-fifo-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string fifo = std::string(dir) + "/events";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  int reader = open(fifo.c_str(), O_RDONLY | O_NONBLOCK);  // lets the sink open it
  ASSERT_GE(reader, 0);
  ASSERT_EQ(fcntl(reader, F_SETPIPE_SZ, 4096), 4096);
  Config config;
  config.exec.labels = {"uid"};
  config.events.ring_buffer_bytes = 4096;
  config.events.output = "file";
  config.events.file_path = fifo;
  auto c = ExecCollector::Start(config, GetParam());
  ASSERT_TRUE(c.has_value()) << c.error().message;
  (*c)->StartEvents();
  int errors = 0;
  auto before = (*c)->Collect(&errors);

  const uint32_t uid = UnusedUid();
  constexpr int kExecs = 200;
  ASSERT_EQ(RunAs(uid, uid, [] { return ExecTimes("/bin/true", kExecs); }), 0);
  auto during = (*c)->Collect(&errors);
  EXPECT_EQ(Value(during, "execflow_execs_total", {{"uid", std::to_string(uid)}}), kExecs);
  EXPECT_GT(Value(during, "execflow_exec_events_dropped_total", {}), 0);

  // Drain the FIFO until the consumer caught up: every exec, and every failed attempt (an
  // event too: a shell's PATH search anywhere on the machine makes them), was then either
  // delivered or counted as dropped, on every UID.
  char buf[65536];
  fcntl(reader, F_SETFL, 0);
  std::atomic<bool> stop{false};
  std::thread drain([&] {
    while (!stop) {
      pollfd p{reader, POLLIN, 0};
      if (poll(&p, 1, 50) > 0 && read(reader, buf, sizeof(buf)) <= 0) break;
    }
  });
  double execs = 0, accounted = 0;
  WaitFor([&] {
    auto now = (*c)->Collect(&errors);
    execs = SumOf(now, "execflow_execs_total") - SumOf(before, "execflow_execs_total") +
            SumOf(now, "execflow_exec_failures_total") - SumOf(before, "execflow_exec_failures_total");
    accounted = (Value(now, "execflow_exec_events_total", {}) - Value(before, "execflow_exec_events_total", {})) +
                (Value(now, "execflow_exec_events_dropped_total", {}) -
                 Value(before, "execflow_exec_events_dropped_total", {}));
    return execs == accounted;
  });
  EXPECT_EQ(accounted, execs);
  EXPECT_GE(execs, kExecs);
  c->reset();  // stop the consumer before the reader goes away
  stop = true;
  drain.join();
  close(reader);
  unlink(fifo.c_str());
  rmdir(dir);
}

INSTANTIATE_TEST_SUITE_P(Transports, ExecCollectorPressure,
                         ::testing::Values(Transport::kRingbuf, Transport::kPerfbuf),
                         [](const auto& info) { return std::string(TransportName(info.param)); });

}  // namespace
}  // namespace execflow
