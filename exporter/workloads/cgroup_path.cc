#include "exporter/workloads/cgroup_path.h"

#include <vector>

namespace execflow {
namespace {

bool IsHexId(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// "0a1b2c3d-0000-4000-8000-00000000000a": 8-4-4-4-12 hex digits.
bool IsUid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash != (c == '-')) return false;
    if (!dash && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// "<prefix><64 hex><suffix>" -> the hex id, or "".
std::string_view Between(std::string_view s, std::string_view prefix, std::string_view suffix) {
  if (s.size() < prefix.size() + suffix.size() || !s.starts_with(prefix) || !s.ends_with(suffix)) return {};
  std::string_view mid = s.substr(prefix.size(), s.size() - prefix.size() - suffix.size());
  return IsHexId(mid) ? mid : std::string_view{};
}

// The pod UID of a kubelet pod cgroup: "kubepods-besteffort-pod<uid _>.slice",
// "kubepods-pod<uid _>.slice" (systemd driver; "kubelet-kubepods-..." nested
// in kind) or "pod<uid>" (cgroupfs driver).
std::string PodUid(std::string_view c) {
  std::string uid;
  if (c.find("kubepods") != std::string_view::npos && c.ends_with(".slice")) {
    const auto p = c.rfind("-pod");
    if (p == std::string_view::npos) return {};
    uid = std::string(c.substr(p + 4, c.size() - p - 4 - 6));
    for (char& ch : uid) ch = ch == '_' ? '-' : ch;
  } else if (c.starts_with("pod")) {
    uid = std::string(c.substr(3));
  }
  return IsUid(uid) ? uid : std::string();
}

}  // namespace

ContainerRef ParseCgroupPath(std::string_view path) {
  ContainerRef ref;
  std::vector<std::string_view> parts;
  for (size_t start = 0; start <= path.size();) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > start) parts.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  std::string pod;
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string_view c = parts[i];
    if (std::string uid = PodUid(c); !uid.empty()) {
      pod = std::move(uid);
      continue;
    }
    struct Form {
      const char* prefix;
      const char* suffix;
      const char* runtime;
    };
    static constexpr Form kForms[] = {
        {"cri-containerd-", ".scope", "containerd"}, {"crio-", ".scope", "cri-o"},
        {"docker-", ".scope", "docker"},             {"libpod-", ".scope", "podman"},
        {"libpod-", "", "podman"},
    };
    std::string_view id;
    std::string runtime;
    for (const Form& f : kForms) {
      id = Between(c, f.prefix, f.suffix);
      if (!id.empty()) {
        runtime = f.runtime;
        break;
      }
    }
    if (id.empty() && IsHexId(c)) {  // a bare id: kubelet's cgroupfs driver, docker's
      id = c;
      runtime = i > 0 && parts[i - 1] == "docker" ? "docker" : "";
    }
    if (id.empty()) continue;
    // The innermost container holds the process; the pod it is in is the
    // last pod seen above it.
    ref = {runtime, std::string(id), pod};
  }
  return ref;
}

}  // namespace execflow
