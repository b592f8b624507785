#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "exporter/bpf/result.h"
#include "exporter/metrics/series_table.h"

namespace execflow {

// Every series table's retired state, by table name ("tcp_sent", "exec_execs").
using SavedTables = std::map<std::string, SeriesTableState>;

// The file's contents as JSON text, and back. A file of another format
// version, or not of this shape, is an error that says what was wrong.
std::string EncodeState(const SavedTables& tables);
Result<SavedTables> DecodeState(const std::string& text);

// The whole text of `path` (not followed if a symlink); nullopt if it is absent.
Result<std::optional<std::string>> ReadStateText(const std::string& path);
// Reads `path`: an absent file is an empty state, not an error.
Result<SavedTables> LoadStateFile(const std::string& path);
// Replaces `path` atomically (a temporary file beside it, fsync, rename,
// fsync of the folder), mode 0600: a crash leaves the old file or the new one.
Result<void> WriteStateFile(const std::string& path, const SavedTables& tables);
// Creates the file's folder (mode 0700) if it is missing.
Result<void> MakeStateDir(const std::string& path);

// The state file of a running exporter: each collector, after a scrape and
// before it is served, hands in its tables' states; the file is rewritten
// when one changed, so nothing exported exceeds what a restart seeds itself
// with. Thread-safe: scrapes run on several HTTP threads.
class StateFile {
 public:
  // `kept`: tables to hold until their collector hands in its own state.
  explicit StateFile(std::string path, SavedTables kept = {}) : path_(std::move(path)), tables_(std::move(kept)) {}
  const std::string& path() const { return path_; }
  // `version` orders the states of one table: an older one handed in late
  // (a scrape that lost the race to the file) is ignored. True if the file
  // holds this state (or a later one).
  bool Save(const std::string& table, uint64_t version, SeriesTableState state);
  // Writes what it holds (at shutdown); false if the write failed.
  bool Flush();

 private:
  bool WriteLocked();
  std::string path_;
  SavedTables tables_;
  std::mutex mu_;  // guards tables_ and what follows
  std::map<std::string, uint64_t> versions_;
  bool failing_ = false;  // the last write failed (logged once until one works)
};

}  // namespace execflow
