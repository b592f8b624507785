#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "exporter/common/result.h"
#include "exporter/metrics/series_table.h"

namespace execflow {

// Every series table's state, by table name ("tcp_sent", "exec_execs").
using SavedTables = std::map<std::string, SeriesTableState>;
// The resolver's workload names by cgroup id: {namespace, pod, container}. A fresh resolver cannot
// name a cgroup gone while no exporter ran; keys counted in it since the last save still get these.
using SavedWorkloads = std::map<uint64_t, std::vector<std::string>>;
struct SavedState {
  SavedTables tables;
  SavedWorkloads workloads;
  bool operator==(const SavedState&) const = default;
};

// Larger state files or journals are refused unread (65,536 flows, 20,000 series: ~15 MiB).
constexpr size_t kMaxStateFileBytes = 64u << 20;
// The longest label value a state file may hold (Kubernetes names are at most 253).
constexpr size_t kMaxStateLabelBytes = 1024;

// The file's contents as JSON text, and back. Another format version or shape, or a value no
// table could hold (a negative, fractional or too large count, a label over kMaxStateLabelBytes),
// is an error saying what was wrong.
std::string EncodeState(const SavedState& state);
Result<SavedState> DecodeState(const std::string& text);

// `path`'s text if it can be trusted: a regular file (symlinks not followed) owned by this
// process's user, writable by no one else, at most kMaxStateFileBytes, in a folder owned by
// this user (or root) and writable by no one else; else an error naming the file and why.
// nullopt if absent.
Result<std::optional<std::string>> ReadStateText(const std::string& path);
// Reads `path` (see ReadStateText): an absent file is an empty state, not an error.
Result<SavedState> LoadStateFile(const std::string& path);
// Replaces `path` atomically: a new file beside it (mode 0600, created exclusively, so no
// other file is written through) renamed over it. Not fsynced: the pinned BPF state it goes
// with does not outlive the machine either, and a killed process' writes are in the page cache.
Result<void> WriteStateFile(const std::string& path, const SavedState& state);
// Whether `path` is a file this exporter wrote (a state file of any format version, or a
// journal) that ReadStateText trusts: the only files it deletes or replaces, so a typo in
// bpf.state_file never costs a file someone else owns.
bool IsOwnStateFile(const std::string& path);
// Removes the "<path>.tmp.<pid>" files of this user that killed writers left; returns how many.
size_t RemoveStaleTemporaries(const std::string& path);
// Creates `path`'s folder (mode 0700) if missing; an existing one must pass ReadStateText's checks.
Result<void> MakeStateDir(const std::string& path);

// A running exporter's state file: each collector hands in its tables' states after a scrape,
// before it is served; the file is rewritten when one changed, so nothing exported exceeds what
// a restart seeds itself with. Thread-safe: scrapes run on several HTTP threads.
class StateFile {
 public:
  // `kept`: tables held until their collector hands in its own; `workloads`: asked at each write.
  explicit StateFile(std::string path, SavedTables kept = {},
                     std::function<SavedWorkloads()> workloads = nullptr)
      : path_(std::move(path)), tables_(std::move(kept)), workloads_(std::move(workloads)) {}
  const std::string& path() const { return path_; }
  // `version` orders one table's states: an older one handed in late (a scrape that lost the
  // race to the file) is ignored. True if the file holds this state or a later one.
  bool Save(const std::string& table, uint64_t version, SeriesTableState state);
  // Writes what it holds (at shutdown); false if the write failed.
  bool Flush();

 private:
  bool WriteLocked();
  std::string path_;
  SavedTables tables_;
  std::function<SavedWorkloads()> workloads_;
  std::mutex mu_;  // guards tables_ and what follows
  std::map<std::string, uint64_t> versions_;
  bool failing_ = false;  // the last write failed (logged once until one works)
};

}  // namespace execflow
