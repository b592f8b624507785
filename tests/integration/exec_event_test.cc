// Exec events as each transport delivers them: their time on the wall clock.
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <thread>

#include <gtest/gtest.h>

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

// Waits (bounded) until `done` holds; polls, the events arrive within 100 ms.
template <typename F>
bool WaitFor(F done) {
  for (int i = 0; i < 500; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
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

}  // namespace
}  // namespace execflow
