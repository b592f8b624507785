#include "exporter/state/keeper.h"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace execflow {

void StateKeeper::Start(std::shared_ptr<StateFile> file, const SavedTables* seed, const std::string& collector) {
  file_ = std::move(file);
  uint64_t saved_seq = 0;
  for (Kept& k : kept_) {
    auto it = seed ? seed->find(k.name) : SavedTables::const_iterator();
    if (!seed || it == seed->end()) continue;
    if (k.import_state(it->second)) {
      k.saved_seq = it->second.taken;
      saved_seq = std::max(saved_seq, k.saved_seq);
      spdlog::info("{}: {} series of {} seeded from the state file", collector, it->second.series.size(), k.name);
    } else {
      spdlog::warn("{}: the state file's {} has other labels ({}.labels changed): not seeded", collector, k.name,
                   collector);
    }
  }
  std::vector<const MapReader*> maps;
  for (const Kept& k : kept_) {
    if (k.map && std::find(maps.begin(), maps.end(), k.map) == maps.end()) maps.push_back(k.map);
  }
  auto resumed = ResumeJournal(TakeJournalPath(file_->path(), collector), seed != nullptr, saved_seq, maps);
  journal_ = std::move(resumed.journal);
  for (const FinishedTake& t : resumed.takes) {
    for (const Kept& k : kept_) {
      if (k.map && t.map == k.map->Name() && t.key.size() == k.key_size && k.field < t.values.size() &&
          t.seq > k.saved_seq && t.values[k.field]) {
        k.closed(t.key, t.values[k.field]);
      }
    }
  }
  Save();
}

void StateKeeper::Save() {
  if (!file_) return;
  uint64_t changes = 0;
  for (const Kept& k : kept_) changes += k.changes();
  if (changes == saved_changes_) return;
  saved_changes_ = changes;
  bool saved = true;
  for (const Kept& k : kept_) {
    SeriesTableState state = k.export_state();
    state.taken = journal_ ? journal_->last_seq() : 0;
    saved = file_->Save(k.name, k.changes(), std::move(state)) && saved;
  }
  if (saved && journal_) journal_->Clear();
}

void StateKeeper::SaveIfJournalLong() {
  if (journal_ && journal_->records() >= kJournalRecordsBeforeSave) Save();
}

}  // namespace execflow
