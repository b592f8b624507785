// libFuzzer: KubeletNames::Load, the names of the kubelet's folders
// (<log dir>/containers/<pod>_<namespace>_<container>-<id>.log and
// <log dir>/pods/<namespace>_<pod>_<uid>). The input is a list of file names
// separated by NUL; a name starting with 'c' is in containers/, any other in
// pods/ (without that first byte). Beyond not crashing: every name the
// workload labels get is non-empty, holds no '_' (the separator), is a valid
// label value (UTF-8, no control characters), and is what a listed name says,
// split at its separators (with its invalid bytes replaced).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "exporter/common/utf8.h"
#include "exporter/workloads/resolver.h"

namespace {

bool Part(const std::string& s) {
  return !s.empty() && s.find('_') == std::string::npos && execflow::LabelValue(s) == s;
}

// Whether `name` is one of `names` once invalid bytes are replaced ('_' is
// never part of a multi-byte character, so replacing before or after
// splitting at it gives the same parts).
bool Listed(const std::vector<std::string>& names, const std::string& name) {
  const std::string want = execflow::LabelValue(name);
  return std::any_of(names.begin(), names.end(),
                     [&](const std::string& n) { return execflow::LabelValue(n) == want; });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> containers, pods;
  for (size_t at = 0; at <= in.size();) {
    size_t end = in.find('\0', at);
    if (end == std::string_view::npos) end = in.size();
    const std::string_view name = in.substr(at, end - at);
    at = end + 1;
    if (name.size() < 2 || name.find('/') != std::string_view::npos) continue;  // not a file name
    (name[0] == 'c' ? containers : pods).emplace_back(name.substr(1));
  }
  execflow::KubeletNames names;
  names.Load(containers, pods);
  for (const std::string& f : containers) {
    if (f.size() < 64 + 4) continue;
    // Kubernetes names go only to a container in a pod (any pod uid will do here).
    const execflow::ContainerRef ref{"containerd", f.substr(f.size() - 68, 64), "pod"};
    if (!names.KnowsContainer(ref)) continue;
    const execflow::Workload w = names.Name(ref);
    if (!Part(w.k8s_namespace) || !Part(w.pod) || !Part(w.container)) std::abort();
    if (!Listed(containers, w.pod + "_" + w.k8s_namespace + "_" + w.container + "-" + ref.container_id + ".log")) {
      std::abort();
    }
  }
  for (const std::string& d : pods) {
    const size_t p = d.rfind('_');
    if (p == std::string::npos) continue;
    const execflow::ContainerRef ref{"", "", d.substr(p + 1)};
    if (!names.KnowsPod(ref)) continue;
    const execflow::Workload w = names.Name(ref);
    if (!Part(w.k8s_namespace) || !Part(w.pod) || !w.container.empty()) std::abort();
    if (!Listed(pods, w.k8s_namespace + "_" + w.pod + "_" + ref.pod_uid)) std::abort();
  }
  return 0;
}
