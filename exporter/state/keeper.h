#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "exporter/bpf/map_reader.h"
#include "exporter/state/journal.h"
#include "exporter/state/state_file.h"

namespace execflow {

// What a collector keeps in bpf.state_file: its series tables, and the journal of its takes
// between two saves (see TakeJournal). Not thread-safe: the collector calls it under its lock
// (Save() lets go of it while the file is written).
class StateKeeper {
 public:
  // Keeps `table` under `name` in the file; takes of `map` (null: none) replay into it with the
  // u64 field `field` of their values. Key: the map's key type, as the table's Closed() takes.
  template <typename Key, typename Table>
  void Keep(std::string name, Table* table, const MapReader* map, size_t field) {
    kept_.push_back({std::move(name), map, field,
                     [table] { return table->ExportState(); }, [table] { return table->changes(); },
                     [table, map](const SeriesTableState& s) {
                       return table->ImportState(s, map ? map->Capacity() : SIZE_MAX);
                     },
                     [table](const std::string& key, uint64_t value) {
                       Key k;
                       std::memcpy(&k, key.data(), sizeof(k));
                       table->Closed(k, value);
                     },
                     sizeof(Key)});
  }

  // For Collector::KeepState: seeds the tables with what the last process saved (null: BPF
  // state not taken over) and replays the takes it journaled after; the collector then saves.
  void Start(std::shared_ptr<StateFile> file, const SavedTables* seed, const std::string& collector);
  // Hands the tables' states to the file if they changed; empties the journal once the file
  // holds them. `lock`, the collector's, is let go of while the file is written (scrapes and
  // closes go on) and held again on return.
  void Save(std::unique_lock<std::mutex>& lock);
  // Whether the journal grew long since the last save (a storm of closes): then the caller saves.
  bool JournalLong() const { return journal_ && journal_->records() >= kJournalRecordsBeforeSave; }
  // map.Take(), journaled when the file is kept.
  Result<void> Take(const MapReader& map, const void* key, void* value) {
    return journal_ ? journal_->Take(map, key, value) : map.Take(key, value);
  }
  TakeJournal* journal() const { return journal_.get(); }

 private:
  static constexpr size_t kJournalRecordsBeforeSave = 8192;  // 4,096 takes
  struct Kept {
    std::string name;
    const MapReader* map;
    size_t field;
    std::function<SeriesTableState()> export_state;
    std::function<uint64_t()> changes;
    std::function<bool(const SeriesTableState&)> import_state;
    std::function<void(const std::string& key, uint64_t value)> closed;
    size_t key_size;
    uint64_t saved_seq = 0;  // the journal's takes the seeded state holds
  };
  std::vector<Kept> kept_;
  std::shared_ptr<StateFile> file_;  // null: no state file
  std::unique_ptr<TakeJournal> journal_;
  std::optional<uint64_t> saved_changes_;  // the tables' changes() when last saved
};

}  // namespace execflow
