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

// Names a workload from what its cgroup path says and the kubelet's folders:
// <log_dir>/containers/<pod>_<namespace>_<container>-<id>.log (one per container)
// and <log_dir>/pods/<namespace>_<pod>_<uid>/ (one per pod). Pure: the folder
// listings are passed in.
class KubeletNames {
 public:
  // Replaces what is known by these listings (file and folder names).
  void Load(const std::vector<std::string>& containers_dir, const std::vector<std::string>& pods_dir);
  // Empty names where the kubelet's folders say nothing about ref, and for
  // a container in no pod (see ParseCgroupPath): only pods carry Kubernetes names.
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

// The workload of a cgroup id, and whether that is final (see SeriesLabels):
// what label tables call to name a key's workload.
using WorkloadOf = std::function<std::pair<Workload, bool>(uint64_t cgroup_id)>;

struct ResolverOptions {
  // The cgroup v2 hierarchy's root as this process sees it; "" finds it in
  // /proc/self/mountinfo (a cgroup2 mount whose root is the whole hierarchy,
  // e.g. the host's /sys/fs/cgroup mounted into the container).
  std::string cgroup_root;
  std::string kubelet_log_dir = "/var/log";
  // The cgroupfs walk and the kubelet folder listings run at most this often.
  std::chrono::milliseconds refresh_interval{250};
  // Past this many cgroups known, those gone longest are forgotten first (a
  // node that runs hundreds of short containers a second stays bounded).
  size_t max_cached = 50000;
};

// cgroup v2 id -> workload, for the labels of exec counts, TCP flows and exec
// events. A cgroup id is the inode number of its cgroupfs folder: an unknown
// id makes the resolver walk cgroupfs again (at most once per
// refresh_interval) and parse the path; Kubernetes names come from the
// kubelet's folders. No API server, no network, no container runtime socket.
// Results are cached; ids whose cgroup is gone are forgotten at the next walk.
// Thread-safe.
class WorkloadResolver {
 public:
  explicit WorkloadResolver(ResolverOptions options);

  // The workload of a cgroup; all empty for the host, for an id no walk
  // found (counted by unresolved()) or without a cgroup v2 hierarchy.
  // *final is false while the answer may still change: a cgroup no walk has
  // found yet, a Kubernetes container the kubelet's folders do not name yet.
  // `pids` in the cgroup, if any, are asked first (/proc/PID/cgroup), which
  // finds a new cgroup without a walk.
  Workload Resolve(uint64_t cgroup_id, bool* final = nullptr, std::initializer_list<uint32_t> pids = {});
  // True when a walk begun after `read_at` (when the caller read the id from a
  // kernel map) saw the whole hierarchy and not this cgroup: it was removed,
  // so nothing can run in it any more. Walks at most once per
  // refresh_interval; false while no walk is due.
  bool Gone(uint64_t cgroup_id, std::chrono::steady_clock::time_point read_at);
  // Ids asked for since the latest walk whose cgroup it did not find (a
  // cgroup that is gone, or a hierarchy this process cannot see).
  size_t unresolved() const;
  const std::string& cgroup_root() const { return root_; }
  // Whether cgroup_root() is the hierarchy's root (not a cgroup namespace's).
  bool whole_hierarchy() const { return whole_hierarchy_; }

  // Where the path of a cgroup no walk found may be learned: the kernel's
  // record of each cgroup as it was made (CgroupCollector), which still knows
  // a container gone before any walk could see it. "" when it does not know.
  // Its paths are from the hierarchy's root, as the walk's (cgroup_root()).
  using PathOf = std::function<std::string(uint64_t cgroup_id)>;
  void LearnPathsFrom(PathOf paths);

  // The containers it has named, by cgroup id (the host and unnamed ones left out).
  std::map<uint64_t, Workload> Named() const;
  // Names an earlier process saved: given as they were for cgroups that went
  // while no exporter ran; a cgroup still there is looked at again as usual
  // once a walk finds it gone or here (a name only changes from unnamed to named).
  void Seed(const std::map<uint64_t, Workload>& named);

 private:
  struct Entry {
    Workload workload;
    ContainerRef ref;
    bool named = true;  // false: a Kubernetes container the kubelet's folders do not name yet
    std::chrono::steady_clock::time_point seen = std::chrono::steady_clock::now();
    // When a walk first missed the cgroup: its workload is still given for
    // kGoneGrace, so the final totals of a short-lived container keep its labels.
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
