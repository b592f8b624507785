#include "tests/integration/privileged.h"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>

#include <spdlog/spdlog.h>

#include "exporter/bpf/libbpf_log.h"
#include "exporter/workloads/resolver.h"

namespace execflow {
namespace {

// libbpf's complaints about hooks this kernel lacks go through spdlog, where
// hook probing turns them down to debug, as in the exporter.
const bool kLibbpfRouted = [] {
  RouteLibbpfLogToSpdlog();
  spdlog::set_level(spdlog::level::warn);
  return true;
}();

}  // namespace

std::string WhyNotPrivileged() {
  if (geteuid() != 0) return "needs root (loads BPF programs)";
  if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) return "needs kernel BTF (/sys/kernel/btf/vmlinux)";
  struct stat st;
  if (stat("/sys/kernel/tracing/events", &st) != 0) {
    return "needs tracefs at /sys/kernel/tracing (mount -t tracefs tracefs /sys/kernel/tracing)";
  }
  return "";
}

int RunAs(uint32_t uid, uint32_t gid, const std::function<bool()>& body) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (setgroups(0, nullptr) != 0 || setgid(gid) != 0 || setuid(uid) != 0) _exit(100);
    _exit(body() ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

uint32_t CurrentNetns() {
  struct stat st;
  return stat("/proc/self/ns/net", &st) == 0 ? static_cast<uint32_t>(st.st_ino) : 0;
}

uint64_t CurrentCgroupId() {
  std::ifstream cg("/proc/self/cgroup");
  std::string line, path;
  while (std::getline(cg, line)) {
    if (line.rfind("0::", 0) == 0) path = line.substr(3);
  }
  std::ifstream mi("/proc/self/mountinfo");
  std::stringstream text;
  text << mi.rdbuf();
  for (const std::string& root : Cgroup2Mounts(text.str())) {
    struct stat st;
    if (stat((root + path).c_str(), &st) == 0) return st.st_ino;
  }
  return 0;
}

uint32_t UnusedUid() {
  static uint32_t next = 3000000000u + static_cast<uint32_t>(getpid() % 100000) * 16;
  while (getpwuid(next) != nullptr) ++next;
  return next++;
}

}  // namespace execflow
