// Exec events as each transport delivers them: their time on the wall clock,
// and their raw records, in which nothing may follow the strings' NULs (no
// kernel stack, no older record).
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "bpf/exec.h"  // before the skeleton, which holds its types
#include "exec.skel.h"
#include "exporter/bpf/event_consumer.h"
#include "exporter/bpf/loader.h"
#include "exporter/collectors/exec_collector.h"
#include "tests/integration/privileged.h"

namespace execflow {
namespace {

int64_t WallNs() {
  timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

// fork + exec `path`; true if the child exited 0.
bool Exec(const std::string& path) {
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    execl(path.c_str(), path.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  return waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// A folder of symlinks to /bin/true with names of chosen lengths: exec'ing
// one makes its path the event's filename and its name the comm.
class Links {
 public:
  Links() {
    char dir[] = "/tmp/execflow-exec-event-XXXXXX";
    if (mkdtemp(dir)) dir_ = dir;
  }
  ~Links() {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  const std::string& dir() const { return dir_; }
  std::string Make(const std::string& name) const {
    const std::string path = dir_ + "/" + name;
    return symlink("/bin/true", path.c_str()) == 0 ? path : "";
  }

 private:
  std::string dir_;
};

class ExecEventTime : public ::testing::TestWithParam<Transport> {};

// The perf buffer's programs stamp CLOCK_MONOTONIC, the ring buffer's
// CLOCK_BOOTTIME: user space must convert each with its own clock.
TEST_P(ExecEventTime, LiesBetweenWallClockReadingsTakenBeforeAndAfterTheExec) {
  EXECFLOW_REQUIRE_PRIVILEGED();
  Config config;
  config.exec.failures_hook = "off";
  auto c = ExecCollector::Start(config, GetParam());
  ASSERT_TRUE(c.has_value()) << c.error().message;
  ASSERT_TRUE((*c)->StartEvents());
  Links links;
  const std::string path = links.Make("timed");
  ASSERT_FALSE(path.empty());
  const int64_t before = WallNs();
  ASSERT_TRUE(Exec(path));
  const int64_t after = WallNs();
  std::optional<ExecRecord> event;
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& r : (*c)->events().Snapshot()) {
      if (r.filename == path) event = r;
    }
    return event.has_value();
  }));
  EXPECT_GE(event->time_ns, before) << "ns before the exec: " << before - event->time_ns;
  EXPECT_LE(event->time_ns, after) << "ns after the child exited: " << event->time_ns - after;
}

INSTANTIATE_TEST_SUITE_P(Transports, ExecEventTime, ::testing::Values(Transport::kRingbuf, Transport::kPerfbuf),
                         [](const auto& info) { return std::string(TransportName(info.param)); });

// The exec programs loaded as ExecCollector loads them (events on, failures
// off), with a consumer that keeps each record's bytes as the kernel wrote them.
struct RawEvents {
  // Records of the long name below take 560 bytes with its command line, of the short
  // one 360: 29 long records fit, and 12 long and 40 short go round it.
  static constexpr uint32_t kBufferBytes = 16384;

  Result<void> Start(const std::string& hook, Transport transport) {
    std::function<Result<void>(exec_bpf*)> configure = [&](exec_bpf* s) -> Result<void> {
      s->rodata->targ_events = true;
      s->rodata->targ_perfbuf = transport == Transport::kPerfbuf;
      return ConfigureTransport(transport, s->maps.exec_events, kBufferBytes);
    };
    auto a = SelectAndAttach<exec_bpf>(ExecHooks(), {{"exec.hook", hook}, {"exec.failures_hook", "off"}},
                                       configure);
    if (!a) return std::unexpected(a.error());
    attached = std::move(*a);
    auto c = EventConsumer::Start({transport, bpf_map__fd(attached.skel->maps.exec_events),
                                   bpf_map__fd(attached.skel->maps.exec_events_perf), kBufferBytes,
                                   "raw exec events"},
                                  [this](const void* data, size_t size) {
                                    if (size < sizeof(exec_event)) return;
                                    exec_event e;
                                    std::memcpy(&e, data, sizeof(e));
                                    std::lock_guard lock(mu);
                                    records.push_back(e);
                                  });
    if (!c) return std::unexpected(c.error());
    consumer = std::move(*c);
    return {};
  }

  // The records whose filename starts with `prefix`.
  std::vector<exec_event> Of(const std::string& prefix) {
    std::vector<exec_event> out;
    std::lock_guard lock(mu);
    for (const auto& e : records) {
      if (strncmp(e.filename, prefix.c_str(), prefix.size()) == 0) out.push_back(e);
    }
    return out;
  }

  ~RawEvents() { consumer.reset(); }  // stops reading before the BPF object goes

  Attached<exec_bpf> attached;
  std::unique_ptr<EventConsumer> consumer;
  std::mutex mu;
  std::vector<exec_event> records;
};

// The bytes of a NUL-terminated field after its first NUL that are not zero.
size_t DirtyTail(const char* field, size_t size) {
  const char* end = field + size;
  const char* nul = std::find(field, end, '\0');
  if (nul == end) return 0;  // fills the field: nothing follows
  return std::count_if(nul, end, [](char c) { return c != 0; });
}

struct Mode {
  std::string hook;
  Transport transport;
};

void PrintTo(const Mode& m, std::ostream* os) { *os << m.hook << "/" << TransportName(m.transport); }

// Each exec hook with each transport, and their test names.
const std::vector<Mode> kEveryMode = {{"tp_btf", Transport::kRingbuf}, {"tp_btf", Transport::kPerfbuf},
                                      {"tracepoint", Transport::kRingbuf}, {"tracepoint", Transport::kPerfbuf}};
std::string ModeName(const ::testing::TestParamInfo<Mode>& info) {
  return info.param.hook + "_" + std::string(TransportName(info.param.transport));
}

class ExecEventBytes : public ::testing::TestWithParam<Mode> {};

// Long names first: the ring buffer's pages, and the per-CPU buffer the
// record is built in, then hold their bytes where a short name's record has
// nothing. 12 long records fit, and each short exec waits for its record, so
// none is lost; the short ones' records go round the ring buffer over the
// long ones'.
TEST_P(ExecEventBytes, NothingFollowsTheNulOfFilenameAndComm) {
  EXECFLOW_REQUIRE_PRIVILEGED();
  RawEvents raw;
  auto ok = raw.Start(GetParam().hook, GetParam().transport);
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  ASSERT_EQ(raw.attached.programs.size(), 1u);
  EXPECT_EQ(DescribeProgram(raw.attached.programs[0]).attach_type, GetParam().hook);
  Links links;
  ASSERT_FALSE(links.dir().empty());
  // 200 + the folder: most of the 256-byte filename; the comm keeps 15 of it.
  const std::string long_path = links.Make("long-" + std::string(195, 'x'));
  const std::string short_path = links.Make("s");
  ASSERT_FALSE(long_path.empty() || short_path.empty());
  constexpr int kLong = 12, kShort = 40;
  for (int i = 0; i < kLong; ++i) ASSERT_TRUE(Exec(long_path));
  ASSERT_TRUE(WaitFor([&] { return raw.Of(long_path).size() == kLong; }));
  for (int i = 1; i <= kShort; ++i) {
    ASSERT_TRUE(Exec(short_path));
    ASSERT_TRUE(WaitFor([&] { return raw.Of(short_path).size() == static_cast<size_t>(i); }))
        << "short exec " << i << " delivered no record";
  }
  auto shorts = raw.Of(short_path);
  ASSERT_EQ(shorts.size(), static_cast<size_t>(kShort));
  for (const auto& e : shorts) {
    EXPECT_STREQ(e.filename, short_path.c_str());
    EXPECT_STREQ(e.comm, "s");
    EXPECT_EQ(DirtyTail(e.filename, sizeof(e.filename)), 0u) << "non-zero bytes after the filename's NUL";
    EXPECT_EQ(DirtyTail(e.comm, sizeof(e.comm)), 0u) << "non-zero bytes after the comm's NUL";
  }
}

// fork + execve `path` with exactly `argv` (and no environment); true if the child exited 0.
bool ExecArgv(const std::string& path, const std::vector<std::string>& argv) {
  std::vector<char*> v;
  for (const auto& a : argv) v.push_back(const_cast<char*>(a.c_str()));
  v.push_back(nullptr);
  char* env[] = {nullptr};
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    execve(path.c_str(), v.data(), env);
    _exit(127);
  }
  int status = 0;
  return waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

class ExecEventArgs : public ::testing::TestWithParam<Mode> {
 protected:
  // The event of one exec of `path` with `argv`, through an ExecCollector of this mode.
  std::optional<ExecRecord> EventOf(const std::vector<std::string>& argv, uint32_t args_max_bytes) {
    Config config;
    config.exec.hook = GetParam().hook;
    config.exec.failures_hook = "off";
    config.events.args_max_bytes = args_max_bytes;
    config.events.ring_buffer_bytes = 1 << 20;
    auto c = ExecCollector::Start(config, GetParam().transport);
    EXPECT_TRUE(c.has_value()) << c.error().message;
    if (!c) return std::nullopt;
    EXPECT_TRUE((*c)->StartEvents());
    const std::string path = links_.Make("args-" + std::to_string(++n_));
    EXPECT_TRUE(ExecArgv(path, argv));
    std::optional<ExecRecord> event;
    EXPECT_TRUE(WaitFor([&] {
      for (const auto& r : (*c)->events().Snapshot()) {
        if (r.filename == path) event = r;
      }
      return event.has_value();
    })) << "no event of " << path;
    return event;
  }
  Links links_;
  int n_ = 0;
};

// Each argument apart, byte for byte: spaces, quotes, empty strings, invalid
// UTF-8 and control bytes (the JSON side: tests/unit/event_log_test.cc).
TEST_P(ExecEventArgs, CarryTheExactArguments) {
  EXECFLOW_REQUIRE_PRIVILEGED();
  const std::vector<std::string> argv = {"first arg", "", "it's \"quoted\"", "\xff\xfe\xc3", "tab\tnew\nline", ""};
  auto e = EventOf(argv, 4096);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->args, argv);
  size_t bytes = 0;
  for (const auto& a : argv) bytes += a.size() + 1;
  EXPECT_EQ(e->args_bytes, bytes);
  EXPECT_FALSE(e->args_truncated);
}

// A 200 KiB command line is cut at the bound and flagged, with its whole size.
TEST_P(ExecEventArgs, ALongCommandLineIsCutAtTheBoundAndFlagged) {
  EXECFLOW_REQUIRE_PRIVILEGED();
  const std::vector<std::string> argv = {"long", std::string(100 * 1024, 'a'), std::string(100 * 1024, 'b')};
  const uint32_t size = 5 + 2 * (100 * 1024 + 1);
  for (uint32_t bound : {4096u, 30720u}) {
    auto e = EventOf(argv, bound);
    ASSERT_TRUE(e.has_value()) << bound;
    EXPECT_EQ(e->args_bytes, size) << bound;
    EXPECT_TRUE(e->args_truncated) << bound;
    ASSERT_EQ(e->args.size(), 2u) << bound;
    EXPECT_EQ(e->args[0], "long");
    EXPECT_EQ(e->args[1], std::string(bound - 5, 'a')) << bound;
  }
  // Off: the size, no argument.
  auto e = EventOf(argv, 0);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->args_bytes, size);
  EXPECT_TRUE(e->args.empty());
  EXPECT_TRUE(e->args_truncated);
}

INSTANTIATE_TEST_SUITE_P(HooksAndTransports, ExecEventArgs, ::testing::ValuesIn(kEveryMode), ModeName);
INSTANTIATE_TEST_SUITE_P(HooksAndTransports, ExecEventBytes, ::testing::ValuesIn(kEveryMode), ModeName);

}  // namespace
}  // namespace execflow
