// Dropping capabilities after attach, on the running kernel.
#include "exporter/privileges/capabilities.h"

#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/privileged.h"

namespace execflow {
namespace {

// Runs `body` in a forked child (capabilities cannot be regained, so the
// test process keeps its own); the child's exit code, 0 when body is true.
int InChild(const std::function<bool()>& body) {
  const pid_t pid = fork();
  if (pid == 0) _exit(body() ? 0 : 1);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// CapEff and CapPrm of every thread, as /proc shows them.
std::vector<std::string> ThreadCaps() {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream f(e.path() / "status");
    std::string line, caps;
    while (std::getline(f, line)) {
      if (line.rfind("CapEff:", 0) == 0 || line.rfind("CapPrm:", 0) == 0) caps += line + " ";
    }
    out.push_back(caps);
  }
  return out;
}

// CapEff and CapPrm of the calling thread (sanitizers run threads of their own).
std::string ThisThreadCaps() {
  std::ifstream f("/proc/thread-self/status");
  std::string line, caps;
  while (std::getline(f, line)) {
    if (line.rfind("CapEff:", 0) == 0 || line.rfind("CapPrm:", 0) == 0) caps += line + " ";
  }
  return caps;
}

// Threads that sleep in a syscall, as the ring buffer consumers do.
struct Sleepers {
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  explicit Sleepers(int n) {
    for (int i = 0; i < n; ++i) {
      threads.emplace_back([this] {
        while (!stop) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      });
    }
  }
  ~Sleepers() {
    stop = true;
    for (auto& t : threads) t.join();
  }
};

TEST(Capabilities, BpfReadsNeedNoCapabilityOnThisKernel) {
  EXECFLOW_REQUIRE_PRIVILEGED();
  // Linux 6.5+ (this machine runs 6.18): map reads on an fd check no capability.
  const auto before = ThisThreadCaps();
  auto works = BpfReadsWorkWith(0, -1);
  ASSERT_TRUE(works.has_value()) << works.error().message;
  EXPECT_TRUE(*works);
  // The probe drops capabilities in a thread of its own: the caller keeps its.
  EXPECT_EQ(ThisThreadCaps(), before);
}

// The probe runs while the event consumers run and allocate. It once forked a
// child that allocated, and a child forked while another thread holds the
// allocator's lock waits for it forever. Many probes under allocating threads.
TEST(Capabilities, ProbingWhileOtherThreadsAllocateNeverHangs) {
  EXECFLOW_REQUIRE_PRIVILEGED();
  std::atomic<bool> stop{false};
  std::atomic<size_t> allocated{0};
  std::vector<std::thread> allocators;
  for (int i = 0; i < 2; ++i) {
    allocators.emplace_back([&] {
      while (!stop) {
        std::vector<std::string> v(64, std::string(100, 'x'));
        allocated += v.size();
      }
    });
  }
  for (int i = 0; i < 200; ++i) {
    auto works = BpfReadsWorkWith(0, -1);
    ASSERT_TRUE(works.has_value() && *works) << "probe " << i;
  }
  stop = true;
  for (auto& t : allocators) t.join();
}

TEST(Capabilities, EveryThreadDropsEverything) {
  EXECFLOW_REQUIRE_PRIVILEGED();
  EXPECT_EQ(InChild([] {
              Sleepers sleepers(4);
              if (!RestrictCapabilities(0)) return false;
              const std::vector<std::string> caps = ThreadCaps();
              bool all_zero = caps.size() == 5;
              for (const auto& c : caps) {
                all_zero = all_zero && c == "CapPrm:\t0000000000000000 CapEff:\t0000000000000000 ";
              }
              // And nothing comes back: creating a BPF map now needs CAP_BPF.
              const int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "x", 4, 4, 1, nullptr);
              return all_zero && fd < 0 && errno == EPERM && CurrentCapabilities().permitted == 0;
            }),
            0);
}

// A thread signalled as it exits never runs the handler: the kernel drops a
// signal sent to one thread once that thread is exiting. Threads come and go
// throughout these drops; each must still succeed (it once failed start-up
// with "a thread did not answer the signal").
TEST(Capabilities, ThreadsExitingDuringTheDropDoNotFailIt) {
  EXECFLOW_REQUIRE_PRIVILEGED();
  EXPECT_EQ(InChild([] {
              std::atomic<bool> stop{false};
              std::thread churn([&] {
                while (!stop) {
                  std::thread quick([] {});
                  quick.join();
                }
              });
              bool ok = true;
              for (int round = 0; ok && round < 50; ++round) {
                auto dropped = RestrictCapabilities(CurrentCapabilities().permitted);
                if (!dropped) std::fprintf(stderr, "round %d: %s\n", round, dropped.error().message.c_str());
                ok = dropped.has_value();
              }
              stop = true;
              churn.join();
              return ok;
            }),
            0);
}

// What an older kernel gets: only CAP_BPF kept, in every thread, and map
// reads still work.
TEST(Capabilities, KeepingOnlyCapBpfStillReadsMaps) {
  EXECFLOW_REQUIRE_PRIVILEGED();
  EXPECT_EQ(InChild([] {
              const int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "x", 4, 8, 1, nullptr);
              Sleepers sleepers(2);
              if (fd < 0 || !RestrictCapabilities(CapBit(CAP_BPF))) return false;
              const std::string want = "CapPrm:\t0000008000000000 CapEff:\t0000008000000000 ";
              bool all = true;
              for (const auto& c : ThreadCaps()) all = all && c == want;
              uint32_t key = 0;
              uint64_t value = 1;
              return all && bpf_map_lookup_elem(fd, &key, &value) == 0 && value == 0 &&
                     CapabilityNames(CurrentCapabilities().effective) == "cap_bpf";
            }),
            0);
}

TEST(Capabilities, Names) {
  EXPECT_EQ(CapabilityNames(0), "");
  EXPECT_EQ(CapabilityNames(CapBit(CAP_BPF) | CapBit(CAP_PERFMON)), "cap_perfmon,cap_bpf");
  EXPECT_EQ(CapabilityNames(CapBit(CAP_SYS_ADMIN)), "cap_sys_admin");
}

}  // namespace
}  // namespace execflow
