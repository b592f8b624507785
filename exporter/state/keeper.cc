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
      spdlog::warn("{}: the state file's {} is not one this table could have saved (other labels: {}.labels "
                   "changed; or more series or keys than it holds): not seeded",
                   collector, k.name, collector);
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
}

void StateKeeper::Save(std::unique_lock<std::mutex>& lock) {
  if (!file_) return;
  uint64_t changes = 0;
  for (const Kept& k : kept_) changes += k.changes();
  if (saved_changes_ && changes == *saved_changes_) return;
  const uint64_t seq = journal_ ? journal_->last_seq() : 0;
  std::vector<std::pair<uint64_t, SeriesTableState>> states;
  for (const Kept& k : kept_) {
    states.emplace_back(k.changes(), k.export_state());
    states.back().second.taken = seq;
  }
  lock.unlock();
  bool saved = true;
  for (size_t i = 0; i < kept_.size(); ++i) {
    saved = file_->Save(kept_[i].name, states[i].first, std::move(states[i].second)) && saved;
  }
  lock.lock();
  if (!saved) return;
  saved_changes_ = std::max(saved_changes_.value_or(0), changes);
  // Takes journaled while the file was written are newer than what it holds: they stay.
  if (journal_ && journal_->last_seq() == seq) journal_->Clear();
}

}  // namespace execflow
