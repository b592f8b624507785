#include "exporter/privileges/capabilities.h"

#include <bpf/bpf.h>
#include <dirent.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "exporter/common/unique_fd.h"
#include "exporter/bpf/kernel_map.h"

namespace execflow {
namespace {

int LastCap() {
  std::ifstream f("/proc/sys/kernel/cap_last_cap");
  int last = CAP_LAST_CAP;
  f >> last;
  return last;
}

struct CapData {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3]{};
};

CapData DataFor(CapSet keep) {
  CapData d;
  for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; ++i) {
    d.data[i].effective = d.data[i].permitted = static_cast<uint32_t>(keep >> (32 * i));
    d.data[i].inheritable = 0;
  }
  return d;
}

// Raw syscalls only: this runs in signal handlers.
int ApplyToThisThread(CapSet keep, int last_cap) {
  CapData now;
  if (syscall(SYS_capget, &now.header, now.data) != 0) return errno;
  if (now.data[CAP_TO_INDEX(CAP_SETPCAP)].effective & CAP_TO_MASK(CAP_SETPCAP)) {
    for (int cap = 0; cap <= last_cap; ++cap) {
      if (!(keep & CapBit(cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) return errno;
    }
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) return errno;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno;
  CapData want = DataFor(keep);
  if (syscall(SYS_capset, &want.header, want.data) != 0) return errno;
  return 0;
}

std::atomic<CapSet> g_keep{0};
std::atomic<int> g_last_cap{CAP_LAST_CAP};
std::atomic<int> g_error{0};
// The threads that ran the handler in this pass, by thread id.
constexpr int kMaxAnswers = 4096;
std::atomic<int> g_answers{0};
std::atomic<pid_t> g_answered[kMaxAnswers];

void OnRestrictSignal(int) {
  const int saved = errno;
  if (int e = ApplyToThisThread(g_keep.load(), g_last_cap.load()); e != 0) g_error.store(e);
  const int i = g_answers.fetch_add(1);
  if (i < kMaxAnswers) g_answered[i].store(static_cast<pid_t>(syscall(SYS_gettid)));
  errno = saved;
}

// A thread that runs no more code: gone from /proc, a zombie or dead (one just
// joined may be listed a moment longer and take a signal it never handles).
bool Exited(pid_t tid) {
  std::ifstream f("/proc/self/task/" + std::to_string(tid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return true;
  const auto p = line.rfind(')');
  return p == std::string::npos || p + 2 >= line.size() || line[p + 2] == 'Z' || line[p + 2] == 'X';
}

std::set<pid_t> Threads() {
  std::set<pid_t> tids;
  DIR* d = opendir("/proc/self/task");
  if (!d) return tids;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') tids.insert(static_cast<pid_t>(std::stol(e->d_name)));
  }
  closedir(d);
  return tids;
}

// CapEff and CapPrm of one thread as /proc shows them.
bool ThreadHolds(pid_t tid, CapSet keep) {
  std::ifstream f("/proc/self/task/" + std::to_string(tid) + "/status");
  std::string line;
  int matched = 0;
  while (std::getline(f, line)) {
    if (line.rfind("CapEff:", 0) == 0 || line.rfind("CapPrm:", 0) == 0) {
      if (std::stoull(line.substr(7), nullptr, 16) != keep) return false;
      ++matched;
    }
  }
  return matched == 2;
}

}  // namespace

Capabilities CurrentCapabilities() {
  CapData d;
  if (syscall(SYS_capget, &d.header, d.data) != 0) return {};
  Capabilities c;
  for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; ++i) {
    c.effective |= CapSet{d.data[i].effective} << (32 * i);
    c.permitted |= CapSet{d.data[i].permitted} << (32 * i);
  }
  return c;
}

std::string CapabilityNames(CapSet set) {
  std::string out;
  for (int cap = 0; cap < 64; ++cap) {
    if (!(set & CapBit(cap))) continue;
    char* name = cap_to_name(static_cast<cap_value_t>(cap));
    out += (out.empty() ? "" : ",") + std::string(name ? name : std::to_string(cap));
    cap_free(name);
  }
  return out;
}

Result<bool> BpfReadsWorkWith(CapSet keep, int prog_fd) {
  // The probe map, made while capabilities allow; the prober uses its fd as serving does.
  UniqueFd map(bpf_map_create(BPF_MAP_TYPE_HASH, "execflow_probe", sizeof(uint32_t), sizeof(uint64_t), 4,
                              nullptr));
  if (!map) return Fail("create a BPF map to probe reads without capabilities", errno);
  auto probe = KernelMap::Of(map.get(), "execflow_probe");
  if (!probe) return std::unexpected(probe.error());
  const uint32_t key = 1;
  const uint64_t value = 42;
  if (!probe->Update(&key, sizeof(key), &value, sizeof(value), BPF_ANY)) {
    return Fail("write the probe BPF map", errno);
  }
  const int last_cap = LastCap();
  // A thread of its own (capabilities are per thread) drops them, reads, ends. Not a
  // forked child: with other threads it may only make async-signal-safe calls, and one
  // that allocated hung on an allocator lock held at the fork (seen under ASan).
  int drop_error = 0;
  bool ok = false;
  std::thread prober([&] {
    drop_error = ApplyToThisThread(keep, last_cap);
    if (drop_error != 0) return;
    uint32_t next = 0;
    uint64_t v = 0;
    std::vector<uint8_t> cursor(8), keys(4 * sizeof(uint32_t)), values(4 * sizeof(uint64_t));
    uint32_t count = 0;
    bpf_prog_info info;
    __u32 info_len = sizeof(info);
    std::memset(&info, 0, sizeof(info));
    auto batch = probe->LookupBatch({}, cursor, keys, values, &count);
    ok = probe->Lookup(key, &v) && v == value && probe->FirstKey(&next).value_or(false) &&
         (batch || batch.error().err == ENOENT) && probe->LookupAndDelete(&key, sizeof(key), &v, sizeof(v)) &&
         (prog_fd < 0 || bpf_obj_get_info_by_fd(prog_fd, &info, &info_len) == 0);
  });
  prober.join();
  if (drop_error != 0) return Fail("probe BPF reads without capabilities: the probing thread could not drop them", drop_error);
  return ok;
}

Result<void> RestrictCapabilities(CapSet keep) {
  static std::mutex mu;
  std::lock_guard lock(mu);
  g_keep = keep;
  g_last_cap = LastCap();
  g_error = 0;
  const int sig = SIGRTMIN;
  struct sigaction sa {};
  sa.sa_handler = OnRestrictSignal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(sig, &sa, nullptr) != 0) return Fail("install the capability signal handler", errno);
  const pid_t self = static_cast<pid_t>(syscall(SYS_gettid));
  std::set<pid_t> reached = {self};
  // Threads a thread could create meanwhile are found by the next pass.
  for (int pass = 0; pass < 5; ++pass) {
    std::set<pid_t> waiting;
    g_answers = 0;
    for (pid_t tid : Threads()) {
      if (reached.count(tid)) continue;
      if (syscall(SYS_tgkill, getpid(), tid, sig) == 0) waiting.insert(tid);
      reached.insert(tid);
    }
    const bool sent = !waiting.empty();
    // Until every thread signalled has answered or exited.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!waiting.empty()) {
      const int n = std::min(g_answers.load(), kMaxAnswers);
      for (int i = 0; i < n; ++i) waiting.erase(g_answered[i].load());
      std::erase_if(waiting, Exited);
      if (waiting.empty()) break;
      if (std::chrono::steady_clock::now() >= deadline) {
        return Fail("drop capabilities: thread " + std::to_string(*waiting.begin()) + " did not answer the signal");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (!sent && pass > 0) break;
  }
  if (int e = ApplyToThisThread(keep, g_last_cap); e != 0) return Fail("drop capabilities", e);
  if (int e = g_error.load(); e != 0) return Fail("drop capabilities in a thread", e);
  for (pid_t tid : Threads()) {
    if (!ThreadHolds(tid, keep) && !Exited(tid)) {
      return Fail("drop capabilities: thread " + std::to_string(tid) + " still holds others");
    }
  }
  return {};
}

}  // namespace execflow
