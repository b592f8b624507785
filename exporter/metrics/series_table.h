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

// A series' labels as a key's labels render them. `final` is false while a
// label may still change (a workload the kubelet's folders do not name
// yet): the key's next deltas then go to the series its labels name then.
struct SeriesLabels {
  SeriesLabelList labels;
  bool final = true;
};

// Every series' labels, rendered once. Lists never move, and one that no
// series uses any more stays until the table moves the lists still in use to
// a new arena, so a snapshot that holds the arena holds all its labels.
struct SeriesLabelArena {
  SeriesLabelList other;               // the "other" series'
  std::deque<SeriesLabelList> lists;   // deque: appending moves nothing
};

// What a restarted exporter that takes the kernel maps over needs to go on
// exactly where a SeriesTable was (see bpf.state_file):
// - per series, its "retired" part: its value minus what its live kernel
//   keys contribute (final totals of closed keys, parts of keys that moved
//   to another series). Never negative: each key contributes its value
//   minus its base, the value it had when it joined the series.
// - per live key, its series and its base: a restarted table puts each key
//   back in the same series, so a workload that went while no exporter ran
//   (whose name no resolver can find any more) keeps its labels, and a key
//   whose series would be another now does not move its past counts.
// A fresh table seeded with it, then scraping the same live keys, exports
// what the old one did.
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
  // A key whose labels may still change (a workload not named yet) goes on
  // from the value its series last saw, so it can move at any scrape.
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

// The series of a SeriesTable at one scrape. Taking one under the
// collector's lock costs a pointer and a value per series and one shared
// reference: the labels stay in the table's arena, so Build() can make
// prometheus-cpp's samples after the lock is released, while the table moves
// on or forgets a series.
class SeriesSnapshot {
 public:
  size_t size() const { return entries_.size(); }
  // One counter sample per series, labels copied (the Exposer consumes
  // what Collect() returns, so every scrape needs its own copies).
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

// Turns per-key counters read from a kernel map into exported counter series.
//
// Every series is an accumulator fed only with per-key deltas (value now
// minus value last seen), so no series decreases, whatever aggregation
// (keys whose labels agree share a series), summing into "other" or the
// removal of keys does; and the sum over all series is exactly what the
// kernel counted. Not thread-safe: the collector serializes Scrape(),
// Closed() and Snapshot(); a snapshot's Build() needs no lock.
//
// What a scrape costs is what changed since the last one: a BPF hash map is
// read bucket by bucket, so the keys come back in the order of the last read
// but for those added or removed since. Each key is first compared with the
// one that followed the previous key last time (a memcmp in a dense array);
// only a key out of that order is looked up by hash, and only a key never
// seen renders its labels.
template <typename Key>
class SeriesTable {
  static_assert(std::is_trivially_copyable_v<Key>, "keys are hashed as bytes");

 public:
  using LabelFn = std::function<SeriesLabels(const Key&)>;

  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  // `other_labels`: the label names of the "other" series (each valued
  // "other"), which sums keys over max_series and what the kernel could not
  // key (map full). A series without live keys (its flows closed) is
  // exported with its final total for `retention` after its last delta, so
  // every scraper sees it however many there are, then forgotten (times are
  // read once per scrape: a close counts from the first scrape that shows it). Such
  // retained series have their own room of max_series: they never take the
  // room of live ones, and past it the oldest are forgotten first.
  SeriesTable(LabelFn labels, const std::vector<std::string>& other_labels, size_t max_series,
              std::chrono::nanoseconds retention, Clock clock = std::chrono::steady_clock::now)
      : labels_(std::move(labels)),
        arena_(std::make_shared<SeriesLabelArena>()),
        max_series_(max_series),
        retention_(retention),
        clock_(std::move(clock)) {
    for (const auto& name : other_labels) arena_->other.push_back({name, "other"});
  }

  // One scrape, from the packed buffers MapReader::ReadAll fills: key i at
  // keys + i * sizeof(Key), its u64 value at values + i * value_stride (a
  // field of a larger value: point `values` at the field); `overflow`: the
  // total the kernel could not key so far (map full).
  void Scrape(const uint8_t* keys, const uint8_t* values, size_t value_stride, size_t n, uint64_t overflow) {
    ScrapeEntries(keys, sizeof(Key), values, value_stride, n, overflow);
  }

  // A key's final value, taken out of the kernel map (a closed flow, a
  // cgroup that is gone).
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

  // Seeds a fresh table (before its first Scrape()) with an earlier
  // process' ExportState(): its series, and each live key back in its
  // series, from its base. Keys whose labels were final stay in their
  // series (their past counts are there, whatever their labels would be
  // now); provisional ones go on from the value last seen and may move. False, and nothing
  // changed, if the state is not one this table could have exported: other
  // label names, a key of another size, a key twice, a series index out of
  // range, more series than the table has room for or more keys than
  // `max_keys`.
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
        // Its first delta, its value now minus its base, goes back to this
        // series, which exported part of it before the restart; so it may not
        // move at the first scrape (folded keys are tried again after it).
        s.value = k.base;
      }
    }
    return true;
  }

  // Bumped whenever ExportState() may have changed.
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
      // Nothing counted yet (a flow that only ever received has sent 0):
      // no series, and no slot until it counts.
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

  // One live key of a scrape: its delta to its series. `cursor`: where in
  // order_ (the last read) the next key should be.
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
    // A folded key is admitted again only once the series have changed.
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

  // After a scrape: series without live keys are kept for their retention,
  // then forgotten (every slot left is live, so none points at one).
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
    // Series that stopped being live leave room: folded keys may try again.
    if (retained_ != retained_before) ++generation_;
  }

  // A fresh entry of `v`: a freed one if any, else a new one at the end.
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

  // A new series of these labels (`id`: IdOf them).
  uint32_t AddSeries(std::string id, SeriesLabelList labels) {
    const uint32_t i = Allocate(series_, free_series_);
    series_[i].labels = &arena_->lists.emplace_back(std::move(labels));
    by_labels_.emplace(std::move(id), i);
    ++count_;
    ++generation_;
    return i;
  }

  // Forgets the n retained series least recently active (a storm of closed
  // flows: they disappear before their retention, nothing decreases).
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

  // Copies the labels in use to a new arena (copies: a snapshot being built
  // may still read the old one, which its last holder frees). Runs once
  // more series were forgotten than are in use, so a series' labels are
  // copied at most once per series forgotten.
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
