#include "exporter/workloads/resolver.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libmount/libmount.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "exporter/common/utf8.h"
#include "exporter/common/unique_fd.h"

namespace execflow {
namespace {

// The root folder of a cgroup hierarchy has inode (cgroup id) 1.
constexpr ino_t kRootCgroupId = 1;

// How long the workload of a cgroup that is gone is still given (see Entry).
constexpr std::chrono::minutes kGoneGrace{10};

// How long a container in a known pod waits for its own log file (the
// kubelet writes it as the container starts) before its pod's name and its
// short id are final.
constexpr std::chrono::minutes kLogWait{1};

std::vector<std::string> List(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (!d) return names;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') names.emplace_back(e->d_name);
  }
  closedir(d);
  return names;
}

// "<a>_<b>_<c>" -> {a, b, c}; false unless exactly three non-empty parts
// (Kubernetes names and UIDs contain no '_').
bool Split3(std::string_view s, std::string* a, std::string* b, std::string* c) {
  const auto p1 = s.find('_');
  const auto p2 = p1 == std::string_view::npos ? p1 : s.find('_', p1 + 1);
  if (p2 == std::string_view::npos || s.find('_', p2 + 1) != std::string_view::npos) return false;
  *a = LabelValue(s.substr(0, p1));
  *b = LabelValue(s.substr(p1 + 1, p2 - p1 - 1));
  *c = LabelValue(s.substr(p2 + 1));
  return !a->empty() && !b->empty() && !c->empty();
}

}  // namespace

void KubeletNames::Load(const std::vector<std::string>& containers_dir,
                        const std::vector<std::string>& pods_dir) {
  containers_.clear();
  pods_.clear();
  for (const std::string& f : containers_dir) {
    // <pod>_<namespace>_<container>-<64 hex id>.log
    constexpr size_t kTail = 1 + 64 + 4;
    if (f.size() <= kTail || !f.ends_with(".log") || f[f.size() - kTail] != '-') continue;
    const std::string id = f.substr(f.size() - kTail + 1, 64);
    Names n;
    if (!Split3(std::string_view(f).substr(0, f.size() - kTail), &n.pod, &n.k8s_namespace, &n.container)) continue;
    containers_[id] = std::move(n);
  }
  for (const std::string& d : pods_dir) {  // <namespace>_<pod>_<uid>
    Names n;
    std::string uid;
    if (Split3(d, &n.k8s_namespace, &n.pod, &uid)) pods_[uid] = std::move(n);
  }
}

bool KubeletNames::KnowsContainer(const ContainerRef& ref) const {
  return !ref.pod_uid.empty() && containers_.count(ref.container_id);
}

bool KubeletNames::KnowsPod(const ContainerRef& ref) const { return pods_.count(ref.pod_uid) > 0; }

Workload KubeletNames::Name(const ContainerRef& ref) const {
  if (ref.pod_uid.empty()) return {};
  if (auto it = containers_.find(ref.container_id); it != containers_.end()) {
    return {it->second.k8s_namespace, it->second.pod, it->second.container};
  }
  Workload w;
  if (auto it = pods_.find(ref.pod_uid); it != pods_.end()) {
    w.k8s_namespace = it->second.k8s_namespace;
    w.pod = it->second.pod;
  }
  return w;
}

std::vector<std::string> Cgroup2Mounts(const std::string& mountinfo) {
  std::vector<std::string> out;
  if (mountinfo.empty()) return out;  // fmemopen() refuses an empty buffer
  // A deleter type of our own: glibc 2.41 declares fclose() with attributes that a
  // template argument drops (gcc 14's -Wignored-attributes).
  struct CloseFile {
    void operator()(FILE* f) const { std::fclose(f); }
  };
  std::unique_ptr<FILE, CloseFile> in(fmemopen(const_cast<char*>(mountinfo.data()), mountinfo.size(), "r"));
  std::unique_ptr<libmnt_table, decltype(&mnt_unref_table)> table(mnt_new_table(), &mnt_unref_table);
  std::unique_ptr<libmnt_iter, decltype(&mnt_free_iter)> it(mnt_new_iter(MNT_ITER_FORWARD),
                                                              &mnt_free_iter);
  // Lines libmount cannot parse are skipped.
  if (!in || !table || !it || mnt_table_parse_stream(table.get(), in.get(), "mountinfo") != 0) return out;
  libmnt_fs* fs = nullptr;
  while (mnt_table_next_fs(table.get(), it.get(), &fs) == 0) {
    // Not "kernel": libmount took the text for an fstab, as it does when the
    // first line is not mountinfo's.
    const char* type = mnt_fs_get_fstype(fs);
    const char* target = mnt_fs_get_target(fs);
    if (mnt_fs_is_kernel(fs) && type && std::strcmp(type, "cgroup2") == 0 && target && *target) {
      out.emplace_back(target);
    }
  }
  return out;
}

WorkloadResolver::WorkloadResolver(ResolverOptions options) : options_(std::move(options)) {
  root_ = options_.cgroup_root;
  if (root_.empty()) {
    std::ifstream in("/proc/self/mountinfo");
    std::stringstream ss;
    ss << in.rdbuf();
    for (const std::string& m : Cgroup2Mounts(ss.str())) {
      struct stat st;
      if (stat(m.c_str(), &st) != 0) continue;
      if (root_.empty() || st.st_ino == kRootCgroupId) root_ = m;
      if (st.st_ino == kRootCgroupId) break;
    }
  }
  struct stat st;
  whole_hierarchy_ = !root_.empty() && stat(root_.c_str(), &st) == 0 && st.st_ino == kRootCgroupId;
  if (root_.empty()) {
    spdlog::warn("workloads: no cgroup v2 hierarchy mounted; namespace, pod and container labels stay empty");
  } else if (!whole_hierarchy_) {
    spdlog::warn("workloads: {} is not the root of the cgroup v2 hierarchy (a cgroup namespace?); "
                 "mount the host's /sys/fs/cgroup to label every workload", root_);
  }
}

bool WorkloadResolver::Due(std::chrono::steady_clock::time_point last) const {
  return std::chrono::steady_clock::now() - last >= options_.refresh_interval;
}

void WorkloadResolver::WalkLocked() {
  walked_ = std::chrono::steady_clock::now();
  walked_once_ = true;
  paths_.clear();
  unresolved_.clear();
  if (root_.empty()) return;
  // Depth-first over the folders; the path is relative to the hierarchy root.
  std::vector<std::string> stack{""};
  while (!stack.empty()) {
    const std::string rel = std::move(stack.back());
    stack.pop_back();
    struct stat st;
    const std::string abs = root_ + rel;
    if (stat(abs.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    paths_[st.st_ino] = rel.empty() ? "/" : rel;
    DIR* d = opendir(abs.c_str());
    if (!d) continue;
    while (dirent* e = readdir(d)) {
      if (e->d_type == DT_DIR && e->d_name[0] != '.') stack.push_back(rel + "/" + e->d_name);
    }
    closedir(d);
  }
  // Forget the cgroups that are gone, after a grace period in which the last
  // scrapes still name their final totals.
  for (auto it = cache_.begin(); it != cache_.end();) {
    Entry& e = it->second;
    const bool here = paths_.count(it->first) > 0;
    if (!here && e.gone_since == decltype(e.gone_since){}) e.gone_since = walked_;
    if (here) e.gone_since = {};
    it = !here && walked_ - e.gone_since > kGoneGrace ? cache_.erase(it) : std::next(it);
  }
  if (cache_.size() > options_.max_cached) {
    std::vector<std::pair<std::chrono::steady_clock::time_point, uint64_t>> gone;
    for (const auto& [id, e] : cache_) {
      if (e.gone_since != decltype(e.gone_since){}) gone.emplace_back(e.gone_since, id);
    }
    // The oldest gone first; only those that go need to be found.
    const size_t n = std::min(gone.size(), cache_.size() - options_.max_cached);
    std::nth_element(gone.begin(), gone.begin() + n, gone.end());
    for (size_t i = 0; i < n; ++i) cache_.erase(gone[i].second);
  }
}

void WorkloadResolver::ListKubeletLocked() {
  listed_ = std::chrono::steady_clock::now();
  names_.Load(List(options_.kubelet_log_dir + "/containers"), List(options_.kubelet_log_dir + "/pods"));
}

bool WorkloadResolver::FindByPidLocked(uint64_t id, uint32_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cgroup");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("0::", 0) != 0) continue;
    const std::string rel = line.substr(3);
    struct stat st;
    // Paths outside this process's cgroup namespace start with "/..": the walk finds those.
    if (rel.rfind("/..", 0) == 0 || stat((root_ + rel).c_str(), &st) != 0 || st.st_ino != id) return false;
    paths_[id] = rel;
    return true;
  }
  return false;
}

Workload WorkloadResolver::Resolve(uint64_t id, bool* final, std::initializer_list<uint32_t> pids) {
  bool ignored;
  if (!final) final = &ignored;
  *final = true;
  std::lock_guard lock(mu_);
  auto it = cache_.find(id);
  if (it != cache_.end() && it->second.named) return it->second.workload;
  if (it == cache_.end()) {
    // The latest walk, the kernel's record of the cgroup's making, the
    // processes', a walk now: the first that knows the path.
    auto walked = [&] {
      auto p = paths_.find(id);
      return p == paths_.end() ? std::string() : p->second;
    };
    std::string path = walked();
    if (path.empty() && learned_) path = learned_(id);
    for (uint32_t pid : pids) {
      if (path.empty() && !root_.empty() && FindByPidLocked(id, pid)) path = walked();
    }
    if (path.empty() && (!walked_once_ || Due(walked_))) {
      WalkLocked();
      path = walked();
    }
    if (path.empty()) {
      unresolved_.insert(id);
      *final = false;
      return {};
    }
    unresolved_.erase(id);
    it = cache_.emplace(id, Entry{{}, ParseCgroupPath(path), false}).first;
  }
  // A container: name it. Kubernetes pods are named by the kubelet's folders,
  // which may appear after the container starts: retried until they do.
  Entry& e = it->second;
  if (e.ref.container_id.empty()) {
    e.named = true;
    return e.workload;
  }
  if (!e.ref.pod_uid.empty() && !names_.KnowsContainer(e.ref) && (listed_ == decltype(listed_){} || Due(listed_))) {
    ListKubeletLocked();
  }
  e.workload = names_.Name(e.ref);
  if (e.workload.container.empty()) e.workload.container = e.ref.container_id.substr(0, 12);
  // Final once the container's own log file names it; a pod's folder alone
  // (a pod's sandbox, which has no log) after kLogWait.
  e.named = e.ref.pod_uid.empty() || names_.KnowsContainer(e.ref) ||
            (names_.KnowsPod(e.ref) && std::chrono::steady_clock::now() - e.seen >= kLogWait);
  *final = e.named;
  return e.workload;
}

bool WorkloadResolver::Gone(uint64_t id, std::chrono::steady_clock::time_point read_at) {
  std::lock_guard lock(mu_);
  if (!whole_hierarchy_) return false;
  // Only a walk begun after the id was read can tell: an older walk lacks
  // cgroups made since (taking their keys as gone lost their labels) and
  // still lists those gone since. One walk judges every id of one read.
  if (!walked_once_ || walked_ < read_at) {
    if (walked_once_ && !Due(walked_)) return false;
    WalkLocked();
  }
  return !paths_.count(id);
}

void WorkloadResolver::LearnPathsFrom(PathOf paths) {
  std::lock_guard lock(mu_);
  learned_ = std::move(paths);
}

WorkloadOf WorkloadsOf(WorkloadResolver* resolver) {
  return [resolver](uint64_t id) -> std::pair<Workload, bool> {
    if (!resolver) return {{}, true};
    bool final = true;
    Workload w = resolver->Resolve(id, &final);
    return {std::move(w), final};
  };
}

std::map<uint64_t, Workload> WorkloadResolver::Named() const {
  std::lock_guard lock(mu_);
  std::map<uint64_t, Workload> out;
  for (const auto& [id, e] : cache_) {
    if (e.named && e.workload != Workload{}) out.emplace(id, e.workload);
  }
  return out;
}

void WorkloadResolver::Seed(const std::map<uint64_t, Workload>& named) {
  std::lock_guard lock(mu_);
  for (const auto& [id, w] : named) {
    // gone_since set: forgotten kGoneGrace after the first walk that misses it, as any other.
    cache_.try_emplace(id, Entry{w, ContainerRef{}, true, {}});
  }
}

size_t WorkloadResolver::unresolved() const {
  std::lock_guard lock(mu_);
  return unresolved_.size();
}

}  // namespace execflow
