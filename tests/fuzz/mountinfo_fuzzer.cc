// libFuzzer: Cgroup2Mounts, the cgroup2 mount points in /proc/self/mountinfo
// text (a container's mounts, which its image and runtime choose), as
// libmount's table parser reads it. Beyond not crashing: at most one mount
// point per line, none empty.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "exporter/workloads/resolver.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::vector<std::string> mounts = execflow::Cgroup2Mounts(text);
  if (mounts.size() > static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) + 1) std::abort();
  for (const std::string& m : mounts) {
    if (m.empty()) std::abort();
  }
  return 0;
}
