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

// The UID in "kubepods[-<qos>]-pod<uid _>.slice" (systemd driver; "kubelet-kubepods-..."
// nested in kind) or "pod<uid>" (cgroupfs driver).
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

// A kubelet folder above the pods: kubepods.slice, kubepods-burstable.slice, kubelet.slice,
// kubelet-kubepods.slice (kind), or with the cgroupfs driver kubepods, burstable, besteffort.
bool KubeletFolder(std::string_view c) {
  return PodUid(c).empty() && (c.starts_with("kubepods") || c.starts_with("kubelet") || c == "burstable" ||
                               c == "besteffort");
}

// A container's own folder: its runtime and id; false if c is not one.
bool ContainerFolder(std::string_view c, std::string_view parent, ContainerRef* ref) {
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
  for (const Form& f : kForms) {
    if (std::string_view id = Between(c, f.prefix, f.suffix); !id.empty()) {
      *ref = {f.runtime, std::string(id), ""};
      return true;
    }
  }
  if (!IsHexId(c)) return false;  // a bare id: kubelet's cgroupfs driver, docker's
  *ref = {parent == "docker" ? "docker" : "", std::string(c), ""};
  return true;
}

}  // namespace

ContainerRef ParseCgroupPath(std::string_view path) {
  std::vector<std::string_view> parts;
  for (size_t start = 0; start <= path.size();) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > start) parts.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  ContainerRef ref;
  // A pod only below kubelet folders from the root, its container directly in it
  // (a pod tree made in a container or a delegated user slice names no pod).
  size_t i = 0;
  while (i < parts.size() && KubeletFolder(parts[i])) ++i;
  if (i > 0 && i + 1 < parts.size()) {
    std::string uid = PodUid(parts[i]);
    if (!uid.empty() && ContainerFolder(parts[i + 1], parts[i], &ref)) {
      ref.pod_uid = std::move(uid);
      return ref;
    }
  }
  // Else the outermost container, so folders made inside it cannot take another id.
  for (size_t j = 0; j < parts.size(); ++j) {
    if (ContainerFolder(parts[j], j > 0 ? parts[j - 1] : std::string_view(), &ref)) return ref;
  }
  return {};
}

}  // namespace execflow
