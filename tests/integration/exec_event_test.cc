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
#include <map>
#include <memory>
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
  (*c)->StartEvents();
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

// The exporter starts reading events only after every collector loaded and its journal was
// replayed (a perf buffer has no reader until then, and drops what its programs send): execs
// in that window are events all the same, none of them dropped.
class ExecEventStart : public ::testing::TestWithParam<Transport> {};

TEST_P(ExecEventStart, ExecsBeforeTheReaderStartsAreEventsNotDrops) {
  EXECFLOW_REQUIRE_PRIVILEGED();
  Config config;
  config.exec.failures_hook = "off";
  auto c = ExecCollector::Start(config, GetParam());
  ASSERT_TRUE(c.has_value()) << c.error().message;
  Links links;
  const std::string path = links.Make("early");
  ASSERT_FALSE(path.empty());
  constexpr int kExecs = 20;
  for (int i = 0; i < kExecs; i++) ASSERT_TRUE(Exec(path));
  (*c)->StartEvents();
  int seen = 0;
  EXPECT_TRUE(WaitFor([&] {
    seen = 0;
    for (const auto& r : (*c)->events().Snapshot()) seen += r.filename == path;
    return seen == kExecs;
  })) << seen << " events of " << kExecs << " execs";
  int errors = 0;
  double dropped = -1;
  for (const auto& f : (*c)->Collect(&errors)) {
    if (f.name == "execflow_exec_events_dropped_total") dropped = f.metric.at(0).counter.value;
  }
  EXPECT_EQ(dropped, 0);
  EXPECT_EQ(errors, 0);
}

INSTANTIATE_TEST_SUITE_P(Transports, ExecEventTime, ::testing::Values(Transport::kRingbuf, Transport::kPerfbuf),
                         [](const auto& info) { return std::string(TransportName(info.param)); });
INSTANTIATE_TEST_SUITE_P(Transports, ExecEventStart, ::testing::Values(Transport::kRingbuf, Transport::kPerfbuf),
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
    auto c = EventConsumer::Open({transport, bpf_map__fd(attached.skel->maps.exec_events),
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
    consumer->Run();
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

// fork + execve `path` with exactly `argv` (and no environment): the child's exit status,
// or the errno of an exec that failed; -1 if the fork or the wait failed.
int ExecStatus(const std::string& path, const std::vector<std::string>& argv) {
  std::vector<char*> v;
  for (const auto& a : argv) v.push_back(const_cast<char*>(a.c_str()));
  v.push_back(nullptr);
  char* env[] = {nullptr};
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    execve(path.c_str(), v.data(), env);
    _exit(errno);
  }
  int status = 0;
  return waitpid(pid, &status, 0) == pid && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The exec of `path` with `argv` succeeded and the program exited 0.
bool ExecArgv(const std::string& path, const std::vector<std::string>& argv) { return ExecStatus(path, argv) == 0; }

class ExecEventArgs : public ::testing::TestWithParam<Mode> {
 protected:
  // An ExecCollector of this mode sending events, or null (a failure reported).
  std::unique_ptr<ExecCollector> Start(uint32_t args_max_bytes) {
    Config config;
    config.exec.hook = GetParam().hook;
    config.exec.failures_hook = "off";
    config.events.args_max_bytes = args_max_bytes;
    config.events.ring_buffer_bytes = 1 << 20;
    auto c = ExecCollector::Start(config, GetParam().transport);
    EXPECT_TRUE(c.has_value()) << c.error().message;
    if (!c) return nullptr;
    (*c)->StartEvents();
    return std::move(*c);
  }
  // The event of one exec of `path` with `argv`, through an ExecCollector of this mode.
  std::optional<ExecRecord> EventOf(const std::vector<std::string>& argv, uint32_t args_max_bytes) {
    auto c = Start(args_max_bytes);
    if (!c) return std::nullopt;
    const std::string path = links_.Make("args-" + std::to_string(++n_));
    EXPECT_TRUE(ExecArgv(path, argv));
    std::optional<ExecRecord> event;
    EXPECT_TRUE(WaitFor([&] {
      for (const auto& r : c->events().Snapshot()) {
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

// The ring buffer keeps an event's arguments in room of a few sizes (powers of two from 32
// bytes up, bpf/exec.bpf.c args_room): command lines of each size, one byte either side and
// the bound, the largest first, so that each smaller record lands where a larger one's bytes
// were. Each carries its arguments exactly and nothing of the room past them.
TEST_P(ExecEventArgs, EverySizeAroundTheRoomStepsIsExact) {
  EXECFLOW_REQUIRE_PRIVILEGED();
  auto c = Start(EXEC_ARGS_MAX);
  ASSERT_TRUE(c);
  std::vector<uint32_t> sizes = {1, EXEC_ARGS_MAX - 1, EXEC_ARGS_MAX};
  for (uint32_t step = 32; step < EXEC_ARGS_MAX; step *= 2) sizes.insert(sizes.end(), {step - 1, step, step + 1});
  std::sort(sizes.rbegin(), sizes.rend());
  std::map<std::string, std::vector<std::string>> sent;  // by path
  for (size_t i = 0; i < sizes.size(); i++) {
    const std::string path = links_.Make("size-" + std::to_string(sizes[i]));
    const std::vector<std::string> argv = {std::string(sizes[i] - 1, static_cast<char>('a' + i % 26))};
    ASSERT_TRUE(ExecArgv(path, argv)) << sizes[i];
    sent[path] = argv;
  }
  std::map<std::string, ExecRecord> got;
  EXPECT_TRUE(WaitFor([&] {
    for (const auto& r : c->events().Snapshot()) {
      if (sent.count(r.filename)) got.insert_or_assign(r.filename, r);
    }
    return got.size() == sent.size();
  })) << got.size() << " of " << sent.size() << " events";
  for (const auto& [path, r] : got) {
    const auto& argv = sent[path];
    EXPECT_EQ(r.args, argv) << path;
    EXPECT_EQ(r.args_bytes, argv[0].size() + 1) << path;
    EXPECT_FALSE(r.args_truncated) << path;
  }
}

// Failed attempts as events (events.failed_execs), by the failure hook's mode.
class ExecFailureEvents : public ::testing::TestWithParam<Mode> {
 protected:
  void SetUp() override {
    EXECFLOW_REQUIRE_PRIVILEGED();
    Config config;
    config.exec.hook = "tracepoint";
    config.exec.failures_hook = GetParam().hook;
    config.events.ring_buffer_bytes = 1 << 20;
    config.events.failed_execs = failed_execs_;
    auto c = ExecCollector::Start(config, GetParam().transport);
    ASSERT_TRUE(c.has_value()) << c.error().message;
    collector_ = std::move(*c);
    collector_->StartEvents();
  }
  // The failed attempt's event of `path`, once `count` failures of it were counted.
  std::optional<ExecRecord> EventOf(const std::string& path) {
    std::optional<ExecRecord> event;
    WaitFor([&] {
      for (const auto& r : collector_->events().Snapshot()) {
        if (r.filename == path) event = r;
      }
      return event.has_value();
    });
    return event;
  }
  bool failed_execs_ = true;
  Links links_;
  std::unique_ptr<ExecCollector> collector_;
};

// The file and arguments asked for, byte for byte, and the errno, for each way an
// exec fails before it replaces the caller: no such file, not executable, no format.
TEST_P(ExecFailureEvents, CarryTheErrnoTheFileAndTheExactArguments) {
  const std::vector<std::string> argv = {"first arg", "", "it's \"quoted\"", "\xff\xfe\xc3", "tab\tnew\nline", ""};
  size_t bytes = 0;
  for (const auto& a : argv) bytes += a.size() + 1;
  const std::string missing = links_.dir() + "/no-such-file";
  const std::string plain = links_.dir() + "/not-executable";
  const std::string junk = links_.dir() + "/no-format";
  for (const auto& [path, mode] : {std::pair{plain, 0644}, std::pair{junk, 0755}}) {
    FILE* f = fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    fputs("\x01\x02 not a program\n", f);
    fclose(f);
    ASSERT_EQ(chmod(path.c_str(), mode), 0);
  }
  for (const auto& [path, err] : {std::pair{missing, ENOENT}, std::pair{plain, EACCES}, std::pair{junk, ENOEXEC}}) {
    ASSERT_EQ(ExecStatus(path, argv), err) << path;
    auto e = EventOf(path);
    ASSERT_TRUE(e.has_value()) << "no event of " << path;
    EXPECT_EQ(e->error, err) << path;
    EXPECT_EQ(e->args, argv) << path;
    EXPECT_EQ(e->args_bytes, bytes) << path;
    EXPECT_FALSE(e->args_truncated) << path;
    EXPECT_EQ(e->uid, 0u);
  }
  // A successful exec's event says no errno.
  const std::string ok = links_.Make("ok");
  ASSERT_TRUE(ExecArgv(ok, {"ok"}));
  auto e = EventOf(ok);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->error, 0);
}

// Read back one by one, a failed attempt's arguments stop at 64 of them or at
// events.args_max_bytes: cut, flagged, and their whole size not claimed.
TEST_P(ExecFailureEvents, ManyOrLongArgumentsAreCutAndFlagged) {
  const std::string many = links_.dir() + "/many";
  ASSERT_EQ(ExecStatus(many, std::vector<std::string>(100, "y")), ENOENT);
  auto e = EventOf(many);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->args, std::vector<std::string>(EXEC_FAILED_ARGV_MAX, "y"));
  EXPECT_TRUE(e->args_truncated);
  EXPECT_FALSE(e->args_bytes.has_value());

  const std::string longer = links_.dir() + "/long";
  ASSERT_EQ(ExecStatus(longer, {"long", std::string(10000, 'a'), "after"}), ENOENT);
  e = EventOf(longer);
  ASSERT_TRUE(e.has_value());
  ASSERT_EQ(e->args.size(), 2u);
  EXPECT_EQ(e->args[0], "long");
  EXPECT_EQ(e->args[1].size(), 4096u - 5 - 1);  // "long", then up to events.args_max_bytes with its NUL
  EXPECT_EQ(e->args[1].find_first_not_of('a'), std::string::npos);
  EXPECT_TRUE(e->args_truncated);
  EXPECT_FALSE(e->args_bytes.has_value());
}

class ExecFailureEventsOff : public ExecFailureEvents {
 protected:
  void SetUp() override {
    failed_execs_ = false;
    ExecFailureEvents::SetUp();
  }
};

// events.failed_execs: false: the failure is counted, and no event made.
TEST_P(ExecFailureEventsOff, CountTheFailureAndMakeNoEvent) {
  const uint32_t uid = UnusedUid();
  const std::string missing = "/nonexistent-execflow/missing-" + std::to_string(getpid());
  const std::string ok = links_.Make("after");
  ASSERT_EQ(RunAs(uid, uid, [&] { return ExecStatus(missing, {"x"}) == ENOENT; }), 0);
  ASSERT_TRUE(ExecArgv(ok, {"after"}));
  ASSERT_TRUE(EventOf(ok).has_value());  // events come in order: the failure's would be here
  for (const auto& r : collector_->events().Snapshot()) EXPECT_NE(r.filename, missing);
  int errors = 0;
  double failures = 0;
  for (const auto& f : collector_->Collect(&errors)) {
    if (f.name != "execflow_exec_failures_total") continue;
    for (const auto& m : f.metric) {
      for (const auto& l : m.label) failures += l.name == "uid" && l.value == std::to_string(uid) ? m.counter.value : 0;
    }
  }
  EXPECT_EQ(failures, 1);
}

INSTANTIATE_TEST_SUITE_P(HooksAndTransports, ExecFailureEvents,
                         ::testing::Values(Mode{"tracepoint", Transport::kRingbuf},
                                           Mode{"tracepoint", Transport::kPerfbuf}),
                         ModeName);

INSTANTIATE_TEST_SUITE_P(HooksAndTransports, ExecFailureEventsOff,
                         ::testing::Values(Mode{"tracepoint", Transport::kRingbuf}),
                         ModeName);

INSTANTIATE_TEST_SUITE_P(HooksAndTransports, ExecEventArgs, ::testing::ValuesIn(kEveryMode), ModeName);
INSTANTIATE_TEST_SUITE_P(HooksAndTransports, ExecEventBytes, ::testing::ValuesIn(kEveryMode), ModeName);

}  // namespace
}  // namespace execflow
