#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "exporter/common/unique_fd.h"
#include "exporter/bpf/map_reader.h"
#include "exporter/common/result.h"

namespace execflow {

// One line of a journal: a take writes a "taking" record with the entry's values before the
// kernel removes it, then a "taken" record with its final values.
struct TakeRecord {
  uint64_t seq = 0;              // per collector, increasing across its processes
  std::string map;               // the kernel map's name
  std::string key;               // the key's bytes
  std::vector<uint64_t> values;  // the value's u64 fields
  bool taken = false;            // false: "taking"
  bool operator==(const TakeRecord&) const = default;
};

// One JSON line, with its newline; and back (an error says what is wrong).
std::string EncodeTakeRecord(const TakeRecord& r);
Result<TakeRecord> DecodeTakeRecord(std::string_view line);

// A journal file's records, and the lines that are not one ("<path> line 3: not valid JSON"),
// skipped: usually a torn last line (full disk, kill mid-write). An absent file holds nothing.
struct JournalContents {
  std::vector<TakeRecord> records;
  std::vector<std::string> skipped;
};
Result<JournalContents> LoadTakeJournal(const std::string& path);

// The journal of a collector that keeps bpf.state_file: "<state file>.<collector>.journal".
std::string TakeJournalPath(const std::string& state_file, const std::string& collector);

// The state file's write-ahead log: a take happens once a final total is known (the map's room
// is for live flows), a save only at the next scrape; the journal holds the takes in between, so
// a kill -9 loses nothing. Plain write(2): a killed process' writes are in the page cache (a
// reboot loses /run, journal and pins alike). Cleared once the state file holds every take (see
// StateKeeper::Save). Not thread-safe: the collector calls it under its lock.
class TakeJournal {
 public:
  // Opens `path` to append (mode 0600), first cutting off a torn last line (LoadTakeJournal read
  // what it could). `last_seq`: the highest sequence number the state file or journal holds.
  static Result<std::unique_ptr<TakeJournal>> Open(const std::string& path, uint64_t last_seq);

  // map.Take(), recorded before and after; ENOENT: not there. If the first record cannot be
  // written (full disk), the entry stays in the map, counted, for a later take, not lost by a kill.
  Result<void> Take(const MapReader& map, const void* key, void* value);
  // Records that an earlier process' take `seq` ended with these values (see FinishTakes).
  Result<void> Finished(uint64_t seq, const std::string& map, const std::string& key,
                        const std::vector<uint64_t>& values) {
    return Append({seq, map, key, values, true});
  }
  // The sequence number of the last take: a state saved after it holds it.
  uint64_t last_seq() const { return last_seq_; }
  // Records written since the last Clear().
  size_t records() const { return records_; }
  // Empties the journal: the state file holds every take up to last_seq().
  void Clear();
  const std::string& path() const { return path_; }

 private:
  TakeJournal(std::string path, UniqueFd fd, uint64_t last_seq, off_t size)
      : path_(std::move(path)), fd_(std::move(fd)), last_seq_(last_seq), size_(size) {}
  // Appends one line; a short write is cut off, so the next record starts a line of its own.
  Result<void> Append(const TakeRecord& r);

  std::string path_;
  UniqueFd fd_;
  uint64_t last_seq_;
  off_t size_;  // the file's length up to its last whole record
  size_t records_ = 0;
  bool failing_ = false;  // the last write failed (logged once until one works)
};

// A take with its final values.
struct FinishedTake {
  uint64_t seq = 0;
  std::string map;
  std::string key;
  std::vector<uint64_t> values;
};
// The takes of a journal an earlier process left, in order. A take without its "taken" record
// (the process died around the kernel's take) is finished here: an entry still in its map (one of
// `maps`, by name) is taken now, and `journal` (if not null) records its final values, so a kill
// before the next save uses them again, not the first record's older ones; a gone entry's first
// record is final. A key taken, re-created and taken again is two takes.
std::vector<FinishedTake> FinishTakes(const std::vector<TakeRecord>& records,
                                      const std::vector<const MapReader*>& maps, TakeJournal* journal = nullptr);

// A collector's journal at start-up (bpf.state_file kept), at `path`: emptied unless the
// collector took its pinned BPF state over; if it did, with the takes the last process
// journaled (see FinishTakes), of which those after `saved_seq` (the seeded tables' highest)
// are not in the tables yet. Problems are logged; `journal` is null if it cannot be written.
struct ResumedJournal {
  std::unique_ptr<TakeJournal> journal;
  std::vector<FinishedTake> takes;
};
ResumedJournal ResumeJournal(const std::string& path, bool adopted, uint64_t saved_seq,
                             const std::vector<const MapReader*>& maps);

}  // namespace execflow
