#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <mutex>
#include <ostream>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "exporter/workloads/cgroup_path.h"

namespace execflow {

// Who a cgroup belongs to, as the labels say it. All empty: the host.
struct Workload {
  std::string k8s_namespace;
  std::string pod;
  std::string container;  // the Kubernetes container name; outside Kubernetes the
                          // runtime's id as `podman ps` and `docker ps` print it (12 hex)
  bool operator==(const Workload&) const = default;
};
inline void PrintTo(const Workload& x, std::ostream* os) { *os << x.k8s_namespace << "/" << x.pod << "/" << x.container; }

// Names workloads from cgroup paths and the kubelet's folders (listings passed in):
// <log_dir>/containers/<pod>_<namespace>_<container>-<id>.log (one per container)
// and <log_dir>/pods/<namespace>_<pod>_<uid>/ (one per pod).
class KubeletNames {
 public:
  // Replaces what is known by these listings (file and folder names).
  void Load(const std::vector<std::string>& containers_dir, const std::vector<std::string>& pods_dir);
  // Empty where the folders say nothing of ref, or for a container in no pod
  // (see ParseCgroupPath): only pods carry Kubernetes names.
  Workload Name(const ContainerRef& ref) const;
  // Whether the container's own log file names it; whether its pod's folder does.
  bool KnowsContainer(const ContainerRef& ref) const;
  bool KnowsPod(const ContainerRef& ref) const;

 private:
  struct Names {
    std::string k8s_namespace, pod, container;
  };
  std::unordered_map<std::string, Names> containers_;  // by container id
  std::unordered_map<std::string, Names> pods_;        // by pod uid (container empty)
};

// A cgroup id's workload and whether it is final (see SeriesLabels), for label tables.
using WorkloadOf = std::function<std::pair<Workload, bool>(uint64_t cgroup_id)>;

struct ResolverOptions {
  // The cgroup v2 root as this process sees it; "" finds a cgroup2 mount of the
  // whole hierarchy in /proc/self/mountinfo (e.g. the host's /sys/fs/cgroup).
  std::string cgroup_root;
  std::string kubelet_log_dir = "/var/log";
  // The cgroupfs walk and the kubelet folder listings run at most this often.
  std::chrono::milliseconds refresh_interval{250};
  // A bound for nodes running many short containers: past it, those gone longest go first.
  size_t max_cached = 50000;
};

// cgroup v2 id (its cgroupfs folder's inode) -> workload, for the labels of exec counts,
// TCP flows and exec events. An unknown id triggers a cgroupfs walk (at most once per
// refresh_interval); Kubernetes names come from the kubelet's folders (no API server,
// network or runtime socket). Cached (see Entry for gone cgroups). Thread-safe.
class WorkloadResolver {
 public:
  explicit WorkloadResolver(ResolverOptions options);

  // All empty for the host, an id no walk found (see unresolved()) or without
  // cgroup v2. *final is false while it may change: not found yet, or a
  // Kubernetes container the kubelet does not name yet. `pids` in the cgroup
  // are tried first (/proc/PID/cgroup): that finds a new cgroup without a walk.
  Workload Resolve(uint64_t cgroup_id, bool* final = nullptr, std::initializer_list<uint32_t> pids = {});
  // True when a walk begun after `read_at` (when the id was read from a kernel
  // map) saw the whole hierarchy but not this cgroup: removed, nothing runs in
  // it. Walks at most once per refresh_interval; false while no walk is due.
  bool Gone(uint64_t cgroup_id, std::chrono::steady_clock::time_point read_at);
  // Ids asked for that the latest walk did not find (gone, or not visible here).
  size_t unresolved() const;
  const std::string& cgroup_root() const { return root_; }
  // Whether cgroup_root() is the hierarchy's root (not a cgroup namespace's).
  bool whole_hierarchy() const { return whole_hierarchy_; }

  // Paths from the hierarchy's root ("" if unknown) of cgroups no walk found, from the
  // kernel's record of each new cgroup (CgroupCollector): it knows containers gone early.
  using PathOf = std::function<std::string(uint64_t cgroup_id)>;
  void LearnPathsFrom(PathOf paths);

  // The containers it has named, by cgroup id (the host and unnamed ones left out).
  std::map<uint64_t, Workload> Named() const;
  // Names an earlier process saved, used for cgroups that went while no exporter
  // ran; a live cgroup is checked by the next walk (names go only unnamed -> named).
  void Seed(const std::map<uint64_t, Workload>& named);

 private:
  struct Entry {
    Workload workload;
    ContainerRef ref;
    bool named = true;  // false: a Kubernetes container the kubelet's folders do not name yet
    std::chrono::steady_clock::time_point seen = std::chrono::steady_clock::now();
    // When a walk first missed the cgroup; its workload is kept kGoneGrace so a
    // short-lived container's final totals keep its labels.
    std::chrono::steady_clock::time_point gone_since{};
  };
  void WalkLocked();
  bool FindByPidLocked(uint64_t id, uint32_t pid);
  void ListKubeletLocked();
  bool Due(std::chrono::steady_clock::time_point last) const;

  const ResolverOptions options_;
  std::string root_;
  bool whole_hierarchy_ = false;
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, std::string> paths_;  // from the latest walk
  std::unordered_map<uint64_t, Entry> cache_;
  std::unordered_set<uint64_t> unresolved_;
  KubeletNames names_;
  PathOf learned_;
  std::chrono::steady_clock::time_point walked_{}, listed_{};
  bool walked_once_ = false;
};

// resolver->Resolve as a WorkloadOf; empty workloads when resolver is null.
WorkloadOf WorkloadsOf(WorkloadResolver* resolver);

// The mount points of cgroup2 file systems in /proc/self/mountinfo text, as
// libmount reads it (escapes such as \040 for a space undone).
std::vector<std::string> Cgroup2Mounts(const std::string& mountinfo);

}  // namespace execflow
