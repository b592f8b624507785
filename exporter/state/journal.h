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

// One line of a take journal. A take of a kernel map entry (a closed flow, a
// gone cgroup's counts) writes a "taking" record with the entry's values
// before the kernel removes it, then a "taken" record with its final values.
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

// What a journal file holds: its records, and each line that is not one
// ("<path> line 3: not valid JSON"), skipped. A torn last line (a write
// that failed when the disk filled, or a kill in the middle of one) is the
// usual one; the records around it still count. An absent file holds nothing.
struct JournalContents {
  std::vector<TakeRecord> records;
  std::vector<std::string> skipped;
};
Result<JournalContents> LoadTakeJournal(const std::string& path);

// The journal of a collector that keeps bpf.state_file: "<state file>.<collector>.journal".
std::string TakeJournalPath(const std::string& state_file, const std::string& collector);

// The state file's write-ahead log. A collector takes an entry out of a
// kernel map the moment its final total is known (the map's room is for live
// flows), but saves its tables only at the next scrape: what it took
// meanwhile is in this journal, so a kill -9 between the two loses nothing.
// Written with plain write(2): a killed process' writes are in the page
// cache (a reboot loses /run, the journal and the pins alike). Cleared once
// the state file holds everything taken (see StateFile::Save). Not
// thread-safe: the collector calls it under its lock.
class TakeJournal {
 public:
  // Opens `path` for appending (created mode 0600), first cutting off a
  // torn last line (LoadTakeJournal has read what it could of it);
  // `last_seq`: the highest sequence number the state file or the journal
  // already holds.
  static Result<std::unique_ptr<TakeJournal>> Open(const std::string& path, uint64_t last_seq);

  // map.Take(), recorded before and after. ENOENT: the entry is not there.
  // If the record before it cannot be written (a full disk), the entry is
  // not taken: it stays in the map, counted, until a later take can be
  // journaled, rather than be lost by a kill.
  Result<void> Take(const MapReader& map, const void* key, void* value);
  // Records that take `seq`, which an earlier process began, was finished
  // with these values (see FinishTakes).
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
  // Appends one line; a failed or short write is cut off again, so the
  // next record starts on a line of its own.
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
// What the takes of a journal a process left behind come to, in order. A
// take without its "taken" record (the process died around the kernel's
// take) is finished here: if its entry is still in its map (one of `maps`,
// by name), the entry is taken now and its values are final, and `journal`
// (if not null) records that, so a kill before the next save finishes it
// with those values again, not the older ones of its first record; if the
// entry is gone, its first record's values are final. A key taken,
// re-created and taken again is two takes.
std::vector<FinishedTake> FinishTakes(const std::vector<TakeRecord>& records,
                                      const std::vector<const MapReader*>& maps, TakeJournal* journal = nullptr);

// A collector's journal at start-up (bpf.state_file kept): the journal at
// `path`, emptied unless the collector took its pinned BPF state over, and, if
// it did, the takes the last process journaled (see FinishTakes): those
// after the sequence number a seeded table holds are not in it yet.
// `saved_seq`: the highest sequence number of the seeded tables. Problems
// are logged; `journal` is null if it cannot be written.
struct ResumedJournal {
  std::unique_ptr<TakeJournal> journal;
  std::vector<FinishedTake> takes;
};
ResumedJournal ResumeJournal(const std::string& path, bool adopted, uint64_t saved_seq,
                             const std::vector<const MapReader*>& maps);

}  // namespace execflow
