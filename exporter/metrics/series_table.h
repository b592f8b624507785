#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <prometheus/client_metric.h>

namespace execflow {

using SeriesLabelList = std::vector<prometheus::ClientMetric::Label>;

// A key's series labels. `final` is false while one may still change (a workload the
// kubelet's folders do not name yet): later deltas go to the series named then.
struct SeriesLabels {
  SeriesLabelList labels;
  bool final = true;
};

// Every series' labels, rendered once. Lists never move and stay until the table copies
// those in use to a new arena, so a snapshot holding an arena holds all its labels.
struct SeriesLabelArena {
  SeriesLabelList other;               // the "other" series'
  std::deque<SeriesLabelList> lists;   // deque: appending moves nothing
};

// What an exporter taking the pinned state over needs to go on exactly where a SeriesTable
// was (see bpf.state_file); a fresh table seeded with it exports what the old one did:
// - per series, its retired part: its value minus what its live keys add (each adds its
//   value minus its base, so this is never negative);
// - per live key, its series and base: the key goes back to the same series, so a workload
//   gone while no exporter ran (no resolver can name it now) keeps its labels, and a key
//   whose series would differ now does not move its past counts.
struct SeriesState {
  SeriesLabelList labels;
  uint64_t retired = 0;
  bool live = false;  // had live keys: counts toward max_series like a live series
  bool operator==(const SeriesState&) const = default;
};
struct KeyState {
  std::string key;      // the key's bytes
  int64_t series = -1;  // index into SeriesTableState::series; -1: the "other" series
  uint64_t base = 0;
  // Labels may still change: the key goes on from `seen`, so it can move at any scrape.
  bool provisional = false;
  uint64_t seen = 0;  // provisional keys only
  bool operator==(const KeyState&) const = default;
};
struct SeriesTableState {
  std::vector<std::string> other_labels;  // the table's label names, to refuse another layout
  std::vector<SeriesState> series;        // by label values
  std::vector<KeyState> keys;             // every live key
  uint64_t other = 0;                     // the "other" series' retired part
  uint64_t taken = 0;  // set by the collector: its take journal's last record this state holds
  bool operator==(const SeriesTableState&) const = default;
};

// A SeriesTable's series at one scrape: a pointer and a value each, and a shared reference to
// the label arena, so Build() can run outside the collector's lock while the table goes on.
class SeriesSnapshot {
 public:
  size_t size() const { return entries_.size(); }
  // One counter sample per series; labels copied, as the Exposer consumes what Collect() returns.
  std::vector<prometheus::ClientMetric> Build() const {
    std::vector<prometheus::ClientMetric> out;
    out.reserve(entries_.size());
    for (const Entry& e : entries_) {
      out.emplace_back().label = *e.labels;
      out.back().counter.value = static_cast<double>(e.value);
    }
    return out;
  }

 private:
  template <typename Key>
  friend class SeriesTable;
  struct Entry {
    const SeriesLabelList* labels;
    uint64_t value;
  };
  std::shared_ptr<const SeriesLabelArena> arena_;
  std::vector<Entry> entries_;
};

// Turns per-key counters read from a kernel map into counter series. Series only get per-key
// deltas (value now minus value last seen), so none decreases whatever keys share a series, go
// to "other" or leave, and all series sum to exactly what the kernel counted. Not thread-safe:
// the collector serializes Scrape(), Closed() and Snapshot(); a snapshot's Build() needs no lock.
// A scrape costs what changed: a BPF hash map is read bucket by bucket, so keys mostly come back
// in the last read's order. A key is compared with the one that followed its predecessor last
// time, looked up by hash only if out of that order, and renders its labels only if new.
template <typename Key>
class SeriesTable {
  static_assert(std::is_trivially_copyable_v<Key>, "keys are hashed as bytes");

 public:
  using LabelFn = std::function<SeriesLabels(const Key&)>;

  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  // `other_labels`: the label names (all valued "other" in the "other" series). A series with
  // no live key (its flows closed) keeps its final total for `retention` from the first scrape
  // that shows its last delta, so every scraper sees it, then is forgotten. Such series have
  // max_series of room of their own, so never take live ones'; past it the oldest go first.
  SeriesTable(LabelFn labels, const std::vector<std::string>& other_labels, size_t max_series,
              std::chrono::nanoseconds retention, Clock clock = std::chrono::steady_clock::now)
      : labels_(std::move(labels)),
        arena_(std::make_shared<SeriesLabelArena>()),
        max_series_(max_series),
        retention_(retention),
        clock_(std::move(clock)) {
    for (const auto& name : other_labels) arena_->other.push_back({name, "other"});
  }

  // One scrape of MapReader::ReadAll's packed buffers: key i at keys + i * sizeof(Key), its
  // u64 at values + i * value_stride (for a field of a larger value, point `values` at it);
  // `overflow`: the total the kernel could not key so far (map full).
  void Scrape(const uint8_t* keys, const uint8_t* values, size_t value_stride, size_t n, uint64_t overflow) {
    ScrapeEntries(keys, sizeof(Key), values, value_stride, n, overflow);
  }

  // A key's final value, taken out of the kernel map (a closed flow, a gone cgroup).
  void Closed(const Key& key, uint64_t final_value) {
    uint64_t seen_value = 0;
    uint32_t series = kNoSeries;
    bool seen_provisional = false;
    if (auto it = index_.find(key); it != index_.end()) {
      const Slot& s = slots_[it->second];
      seen_value = s.value;
      series = s.series;
      seen_provisional = s.provisional;
      FreeSlot(it);
    }
    // A re-created entry (a reused key) restarts below what we saw.
    const uint64_t delta = final_value >= seen_value ? final_value - seen_value : final_value;
    bool provisional = false;
    if (series == kNoSeries || series == kOther || seen_provisional) series = SeriesOf(key, &provisional);
    Add(series, delta, false, true);
    ++changes_;
  }

  // How many live keys the table follows (a restart saves each one).
  size_t keys() const { return index_.size(); }

  // The series after the last Scrape(), for Build() outside the lock.
  SeriesSnapshot Snapshot() const {
    SeriesSnapshot snap;
    snap.arena_ = arena_;
    snap.entries_.reserve(count_ + 1);
    for (const Series& s : series_) {
      if (s.labels) snap.entries_.push_back({s.labels, s.value});
    }
    if (other_ > 0) snap.entries_.push_back({&arena_->other, other_});
    return snap;
  }
  std::vector<prometheus::ClientMetric> Export() const { return Snapshot().Build(); }

  // Live keys whose labels had no room under max_series (summed into the "other" series).
  size_t folded() const { return folded_; }

  // What a restart needs (see SeriesTableState). Changes only where changes() does.
  SeriesTableState ExportState() const {
    std::vector<uint64_t> live(series_.size(), 0);
    std::vector<bool> has_live(series_.size(), false);
    uint64_t other_live = 0;
    for (const Slot& s : slots_) {
      if (!s.used) continue;
      if (s.series == kOther) {
        other_live += s.value - s.base;
      } else if (s.series < series_.size()) {
        live[s.series] += s.value - s.base;
        has_live[s.series] = true;
      }
    }
    SeriesTableState out;
    for (const auto& l : arena_->other) out.other_labels.push_back(l.name);
    std::vector<uint32_t> order;  // the series exported, by label values
    for (uint32_t i = 0; i < series_.size(); ++i) {
      if (series_[i].labels && (series_[i].value != live[i] || has_live[i])) order.push_back(i);
    }
    std::sort(order.begin(), order.end(),
              [&](uint32_t a, uint32_t b) { return IdOf(*series_[a].labels) < IdOf(*series_[b].labels); });
    std::vector<int64_t> position(series_.size(), -1);
    for (uint32_t i : order) {
      position[i] = static_cast<int64_t>(out.series.size());
      out.series.push_back({*series_[i].labels, series_[i].value - live[i], has_live[i]});
    }
    for (const Slot& s : slots_) {
      if (!s.used || s.series == kNoSeries) continue;
      out.keys.push_back({std::string(reinterpret_cast<const char*>(&s.key), sizeof(Key)),
                          s.series == kOther ? -1 : position[s.series], s.base, s.provisional,
                          s.provisional ? s.value : 0});
    }
    std::sort(out.keys.begin(), out.keys.end(), [](const KeyState& a, const KeyState& b) { return a.key < b.key; });
    // The kernel's overflow counter survives with its map.
    out.other = other_ - overflow_seen_ - other_live;
    return out;
  }

  // Seeds a fresh table (before its first Scrape()) with an earlier process' ExportState(): each
  // live key back in its series from its base. Keys with final labels stay there (their past
  // counts are there); provisional ones go on from the value last seen and may move. False, with
  // nothing changed, if this table could not have exported it: other label names, a key of another
  // size or twice, a series index out of range, more series than its room or keys than `max_keys`.
  bool ImportState(const SeriesTableState& state, size_t max_keys = SIZE_MAX) {
    std::vector<std::string> names;
    for (const auto& l : arena_->other) names.push_back(l.name);
    if (state.other_labels != names) return false;
    // Live series have max_series of room, series kept after their keys went as much again.
    if (max_series_ < SIZE_MAX / 2 && state.series.size() > 2 * max_series_) return false;
    if (state.keys.size() > max_keys) return false;
    for (const SeriesState& in : state.series) {
      if (in.labels.size() != names.size()) return false;
      for (size_t k = 0; k < names.size(); ++k) {
        if (in.labels[k].name != names[k]) return false;
      }
    }
    std::unordered_map<std::string_view, bool> seen_keys;
    for (const KeyState& k : state.keys) {
      if (k.key.size() != sizeof(Key) || k.series < -1 || k.series >= static_cast<int64_t>(state.series.size()) ||
          !seen_keys.emplace(k.key, true).second || (k.provisional && (k.series < 0 || k.seen < k.base))) {
        return false;
      }
    }
    const TimePoint now = clock_();
    std::vector<uint32_t> index(state.series.size());
    for (size_t n = 0; n < state.series.size(); ++n) {
      const SeriesState& in = state.series[n];
      std::string id = IdOf(in.labels);
      uint32_t i;
      if (auto it = by_labels_.find(id); it != by_labels_.end()) {
        i = it->second;
      } else {
        i = AddSeries(std::move(id), in.labels);
        // Series without live keys have their own room, as they had.
        series_[i].retained = !in.live;
        if (!in.live) ++retained_;
      }
      series_[i].value += in.retired;
      series_[i].active = now;  // retention restarts with the process
      index[n] = i;
    }
    other_ += state.other;
    ++generation_;
    ++changes_;
    for (const KeyState& k : state.keys) {
      Key key;
      std::memcpy(&key, k.key.data(), sizeof(Key));
      Slot& s = slots_[FindOrAddSlot(reinterpret_cast<const uint8_t*>(&key))];
      s.series = k.series < 0 ? kOther : index[k.series];
      s.base = k.base;
      s.folded_at = generation_;
      if (k.provisional) {
        // What it had added up to `seen` is its series' again; it goes on from there.
        s.provisional = true;
        s.value = k.seen;
        series_[s.series].value += k.seen - k.base;
      } else {
        // Its first delta (value now minus base) goes to this series, which exported part of it
        // before the restart, so it must not move then (keys in "other" are tried again later).
        s.value = k.base;
      }
    }
    return true;
  }

  uint64_t changes() const { return changes_; }

 private:
  static constexpr uint32_t kNoSeries = std::numeric_limits<uint32_t>::max();  // not assigned yet
  static constexpr uint32_t kOther = kNoSeries - 1;                           // summed into the "other" series
  static constexpr uint32_t kNoPosition = std::numeric_limits<uint32_t>::max();
  static constexpr size_t kCompactAfter = 1024;  // forgotten series' labels kept at least

  using TimePoint = std::chrono::steady_clock::time_point;
  struct Series {
    const SeriesLabelList* labels = nullptr;  // in arena_; null: a free entry
    uint64_t value = 0;     // the counter
    bool live = false;      // had a live key in this scrape
    bool retained = false;  // no live key at the last scrape: kept for its final total
    bool closed = false;    // got a key's final total since the last scrape
    TimePoint active;       // when it last had a live key or got a delta or a close
  };
  // A key seen live at the last scrape.
  struct Slot {
    Key key;
    uint64_t value = 0;
    uint64_t base = 0;               // its value when it joined its series (see KeyState)
    uint64_t scrape = 0;             // the last scrape that saw it live
    uint64_t folded_at = 0;          // generation_ when summed into the "other" series
    uint32_t series = kNoSeries;
    uint32_t position = kNoPosition;  // in order_ after its last scrape
    bool provisional = false;        // its labels may still change
    bool used = false;               // false: free
  };

  // Keys are plain structs with zeroed padding: hashed and compared as bytes.
  struct KeyHash {
    size_t operator()(const Key& k) const {
      return std::hash<std::string_view>()(std::string_view(reinterpret_cast<const char*>(&k), sizeof(k)));
    }
  };
  struct KeyEq {
    bool operator()(const Key& a, const Key& b) const { return std::memcmp(&a, &b, sizeof(a)) == 0; }
  };
  using Index = std::unordered_map<Key, uint32_t, KeyHash, KeyEq>;  // key -> slot

  void ScrapeEntries(const uint8_t* keys, size_t key_stride, const uint8_t* values, size_t value_stride,
                     size_t n, uint64_t overflow) {
    folded_ = 0;
    ++scrapes_;
    const uint64_t generation_before = generation_;
    now_ = clock_();
    next_order_.clear();
    next_order_.reserve(n);
    size_t cursor = 0;  // where in order_ the next key should be
    for (size_t i = 0; i < n; ++i) {
      uint64_t value;
      std::memcpy(&value, values + i * value_stride, sizeof(value));
      // Nothing counted yet (a flow that only received has sent 0): no series or slot yet.
      if (value != 0) ScrapeKey(keys + i * key_stride, value, &cursor);
    }
    // Keys leave the kernel map through Closed(); forget what vanished otherwise.
    for (uint32_t id : order_) {
      if (slots_[id].used && slots_[id].scrape != scrapes_) {
        FreeSlot(index_.find(slots_[id].key));
        ++changes_;
      }
    }
    order_.swap(next_order_);
    if (overflow > overflow_seen_) {
      other_ += overflow - overflow_seen_;
      overflow_seen_ = overflow;
    }
    AgeSeries();
    if (generation_ != generation_before) ++changes_;  // series added, forgotten, live or not
    if (arena_garbage_ > kCompactAfter && arena_garbage_ > count_) CompactArena();
  }

  // One live key of a scrape: its delta to its series. `cursor`: as in ScrapeEntries.
  void ScrapeKey(const uint8_t* key, uint64_t value, size_t* cursor) {
    uint32_t id;
    if (*cursor < order_.size() && slots_[order_[*cursor]].used &&
        std::memcmp(&slots_[order_[*cursor]].key, key, sizeof(Key)) == 0) {
      id = order_[(*cursor)++];
    } else {
      id = FindOrAddSlot(key);
      if (slots_[id].position != kNoPosition) *cursor = slots_[id].position + 1;
    }
    Slot& s = slots_[id];
    const uint64_t delta = value >= s.value ? value - s.value : value;
    const uint64_t seen = s.value;
    if (value < s.value) {
      // A re-created entry: what the earlier one added stays in the series.
      s.base = 0;
      ++changes_;
    }
    if (s.provisional && value != s.value) ++changes_;  // a restart goes on from its last value
    s.value = value;
    s.scrape = scrapes_;
    s.position = static_cast<uint32_t>(next_order_.size());
    next_order_.push_back(id);
    // A key in "other" gets a series again only once the series have changed.
    if (s.series == kNoSeries || s.provisional || (s.series == kOther && s.folded_at != generation_)) {
      const uint32_t was = s.series;
      s.series = SeriesOf(s.key, &s.provisional);
      s.folded_at = generation_;
      if (was == kNoSeries) ++changes_;  // a new key to save
      if (was != kNoSeries && was != s.series) {
        // Its earlier value stays behind; the new series gets what it adds from here.
        s.base = value >= seen ? seen : 0;
        ++changes_;
      }
    }
    if (s.series == kOther) ++folded_;
    Add(s.series, delta, true, false);
  }

  // After a scrape: forgets series with no live key past their retention (no slot points at them).
  void AgeSeries() {
    const size_t retained_before = retained_;
    retained_ = 0;
    for (uint32_t i = 0; i < series_.size(); ++i) {
      Series& s = series_[i];
      if (!s.labels) continue;
      // A final total counts from the first scrape that shows it.
      if (s.live || s.closed) s.active = now_;
      s.closed = false;
      s.retained = !s.live;
      s.live = false;
      if (s.retained && now_ - s.active > retention_) {
        ForgetSeries(i);
      } else if (s.retained) {
        ++retained_;
      }
    }
    if (retained_ > max_series_) ForgetOldestRetained(retained_ - max_series_);
    // Series that stopped being live leave room: keys in "other" may try again.
    if (retained_ != retained_before) ++generation_;
  }

  template <typename T>
  static uint32_t Allocate(std::vector<T>& v, std::vector<uint32_t>& free) {
    uint32_t i;
    if (!free.empty()) {
      i = free.back();
      free.pop_back();
    } else {
      i = static_cast<uint32_t>(v.size());
      v.emplace_back();
    }
    v[i] = T{};
    return i;
  }

  uint32_t FindOrAddSlot(const uint8_t* bytes) {
    Key key;
    std::memcpy(&key, bytes, sizeof(Key));
    auto [it, added] = index_.try_emplace(key, 0);
    if (!added) return it->second;
    const uint32_t id = Allocate(slots_, free_slots_);
    slots_[id].key = key;
    slots_[id].used = true;
    it->second = id;
    return id;
  }

  void FreeSlot(typename Index::iterator it) {
    slots_[it->second].used = false;
    free_slots_.push_back(it->second);
    index_.erase(it);
  }

  static std::string IdOf(const SeriesLabelList& labels) {
    std::string id;
    for (const auto& label : labels) (id += label.value) += '\xff';
    return id;
  }

  // The key's series, admitted if there is room; kOther if not.
  uint32_t SeriesOf(const Key& key, bool* provisional) {
    SeriesLabels l = labels_(key);
    *provisional = !l.final;
    std::string id = IdOf(l.labels);
    if (auto it = by_labels_.find(id); it != by_labels_.end()) return it->second;
    if (count_ - retained_ >= max_series_) return kOther;  // retained series have their own room
    return AddSeries(std::move(id), std::move(l.labels));
  }

  uint32_t AddSeries(std::string id, SeriesLabelList labels) {
    const uint32_t i = Allocate(series_, free_series_);
    series_[i].labels = &arena_->lists.emplace_back(std::move(labels));
    by_labels_.emplace(std::move(id), i);
    ++count_;
    ++generation_;
    return i;
  }

  // Forgets the n least recently active series without live keys, before their retention
  // (a storm of closed flows); nothing decreases.
  void ForgetOldestRetained(size_t n) {
    std::vector<uint32_t> old;
    for (uint32_t i = 0; i < series_.size(); ++i) {
      if (series_[i].labels && series_[i].retained) old.push_back(i);
    }
    // Ties by label values, so which go is reproducible.
    std::sort(old.begin(), old.end(), [&](uint32_t a, uint32_t b) {
      if (series_[a].active != series_[b].active) return series_[a].active < series_[b].active;
      return IdOf(*series_[a].labels) < IdOf(*series_[b].labels);
    });
    for (size_t k = 0; k < n; ++k) ForgetSeries(old[k]);
    retained_ -= n;
  }

  void ForgetSeries(uint32_t i) {
    by_labels_.erase(IdOf(*series_[i].labels));
    series_[i].labels = nullptr;  // the arena keeps them for snapshots
    ++arena_garbage_;
    free_series_.push_back(i);
    --count_;
    ++generation_;
  }

  // Copies the labels in use to a new arena (a snapshot being built may still read the old one).
  // Runs once more series were forgotten than are in use: at most one copy per series forgotten.
  void CompactArena() {
    auto fresh = std::make_shared<SeriesLabelArena>();
    fresh->other = arena_->other;
    for (Series& s : series_) {
      if (s.labels) s.labels = &fresh->lists.emplace_back(*s.labels);
    }
    arena_ = std::move(fresh);
    arena_garbage_ = 0;
  }

  void Add(uint32_t series, uint64_t delta, bool live, bool closed) {
    if (series == kOther) {
      other_ += delta;
      return;
    }
    Series& s = series_[series];
    s.value += delta;
    s.closed = s.closed || closed;
    s.live = s.live || live;
  }

  LabelFn labels_;
  std::shared_ptr<SeriesLabelArena> arena_;
  size_t arena_garbage_ = 0;  // lists in arena_ no series uses
  size_t max_series_;
  std::chrono::nanoseconds retention_;
  Clock clock_;  // read once per scrape
  TimePoint now_{};  // the last scrape's time
  size_t retained_ = 0;  // series without live keys at the last scrape

  std::vector<Slot> slots_;
  std::vector<uint32_t> free_slots_;
  Index index_;
  std::vector<uint32_t> order_;       // slots in the order of the last read
  std::vector<uint32_t> next_order_;  // the read being applied; kept for its capacity

  std::vector<Series> series_;
  std::vector<uint32_t> free_series_;
  std::unordered_map<std::string, uint32_t> by_labels_;  // label values -> series
  size_t count_ = 0;                                    // series in use
  uint64_t generation_ = 0;  // bumped when a series is added or forgotten
  uint64_t changes_ = 0;     // bumped when ExportState() may have changed

  uint64_t scrapes_ = 0;
  uint64_t other_ = 0;
  uint64_t overflow_seen_ = 0;
  size_t folded_ = 0;
};

}  // namespace execflow
