// libFuzzer: ParseCgroupPath (a path from cgroupfs or /proc/PID/cgroup, which
// anyone who can create a cgroup names). Beyond not crashing: a container id is
// 64 lowercase hex digits found in the path, a pod UID is 8-4-4-4-12 lowercase
// hex, the runtime is one of the four, and nothing is set without an id.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "exporter/workloads/cgroup_path.h"

namespace {

bool Hex(std::string_view s) { return s.find_first_not_of("0123456789abcdef") == std::string_view::npos; }

bool Uid(const std::string& s) {
  if (s.size() != 36) return false;
  for (size_t i : {8, 13, 18, 23}) {
    if (s[i] != '-') return false;
  }
  return Hex(s.substr(0, 8)) && Hex(s.substr(9, 4)) && Hex(s.substr(14, 4)) && Hex(s.substr(19, 4)) &&
         Hex(s.substr(24));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view path(reinterpret_cast<const char*>(data), size);
  const execflow::ContainerRef ref = execflow::ParseCgroupPath(path);
  if (ref.container_id.empty()) {
    if (!ref.runtime.empty() || !ref.pod_uid.empty()) std::abort();
    return 0;
  }
  if (ref.container_id.size() != 64 || !Hex(ref.container_id)) std::abort();
  if (path.find(ref.container_id) == std::string_view::npos) std::abort();
  if (!ref.pod_uid.empty() && !Uid(ref.pod_uid)) std::abort();
  if (!(ref.runtime.empty() || ref.runtime == "containerd" || ref.runtime == "cri-o" || ref.runtime == "docker" ||
        ref.runtime == "podman")) {
    std::abort();
  }
  return 0;
}
