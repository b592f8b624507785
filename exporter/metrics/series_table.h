#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include <prometheus/client_metric.h>

namespace execflow {

// A series' labels as a key's labels render them. `final` is false while a
// label may still change (a workload the kubelet's folders do not name
// yet): the key's next deltas then go to the series its labels name then.
struct SeriesLabels {
  std::vector<prometheus::ClientMetric::Label> labels;
  bool final = true;
};

// Turns per-key counters read from a kernel map into exported counter series.
//
// Every series is an accumulator fed only with per-key deltas (value now
// minus value last seen), so no series decreases, whatever aggregation
// (keys whose labels agree share a series), folding into "other" or the
// removal of keys does; and the sum over all series is exactly what the
// kernel counted. Not thread-safe: the collector serializes Scrape() and
// Closed().
template <typename Key>
class SeriesTable {
  static_assert(std::is_trivially_copyable_v<Key>, "keys are hashed as bytes");

 public:
  using LabelFn = std::function<SeriesLabels(const Key&)>;

  // `other_labels`: the label names of the "other" series (each valued
  // "other"), which sums keys over max_series and what the kernel could not
  // key (map full). A series without live keys is exported for `retention`
  // scrapes after its last delta, then forgotten.
  SeriesTable(LabelFn labels, std::vector<std::string> other_labels, size_t max_series,
              uint32_t retention)
      : labels_(std::move(labels)),
        other_labels_(std::move(other_labels)),
        max_series_(max_series),
        retention_(retention) {}

  struct Live {
    Key key;
    uint64_t value;
  };
  // One scrape: every key in the kernel map, and the total the kernel could
  // not key so far.
  void Scrape(const std::vector<Live>& live, uint64_t overflow) {
    for (auto& [_, s] : series_) s.live = false;
    folded_ = 0;
    ++scrapes_;
    for (const Live& l : live) {
      Seen& last = seen_[l.key];
      const uint64_t delta = l.value >= last.value ? l.value - last.value : l.value;
      last.value = l.value;
      last.scrape = scrapes_;
      if (!last.series || last.provisional) last.series = SeriesOf(l.key, &last.provisional);
      if (!last.series) ++folded_;
      Add(last.series, delta, true, false);
    }
    // Keys leave the kernel map through Closed(); forget what vanished otherwise.
    std::erase_if(seen_, [this](const auto& kv) { return kv.second.scrape != scrapes_; });
    if (overflow > overflow_seen_) {
      other_ += static_cast<double>(overflow - overflow_seen_);
      overflow_seen_ = overflow;
    }
    // Every key left in seen_ is live, so no Seen::series points at a series
    // erased here.
    for (auto it = series_.begin(); it != series_.end();) {
      Series& s = it->second;
      s.idle_scrapes = s.live ? 0 : (s.touched ? 1 : s.idle_scrapes + 1);
      s.touched = false;
      it = s.idle_scrapes > retention_ ? series_.erase(it) : std::next(it);
    }
  }

  // A key's final value, taken out of the kernel map (a closed flow, a
  // cgroup that is gone).
  void Closed(const Key& key, uint64_t final_value) {
    Seen seen;
    if (auto it = seen_.find(key); it != seen_.end()) {
      seen = it->second;
      seen_.erase(it);
    }
    // A re-created entry (a reused key) restarts below what we saw.
    const uint64_t delta = final_value >= seen.value ? final_value - seen.value : final_value;
    bool provisional = false;
    Add(seen.series && !seen.provisional ? seen.series : SeriesOf(key, &provisional), delta, false, true);
  }

  // The series after the last Scrape(), labels rendered once per series.
  std::vector<prometheus::ClientMetric> Export() const {
    std::vector<prometheus::ClientMetric> out;
    out.reserve(series_.size() + 1);
    for (const auto& [_, s] : series_) out.push_back(s.sample);
    if (other_ > 0) {
      prometheus::ClientMetric other;
      for (const auto& name : other_labels_) other.label.push_back({name, "other"});
      other.counter.value = other_;
      out.push_back(std::move(other));
    }
    return out;
  }

  // Live keys whose labels had no room under max_series (folded into "other").
  size_t folded() const { return folded_; }

 private:
  struct Series {
    prometheus::ClientMetric sample;  // labels; the counter holds the total
    bool live = false;                // had a live key at the last scrape
    bool touched = false;             // got a delta or a close since the last scrape
    uint32_t idle_scrapes = 0;        // scrapes since it was last live or touched
  };
  struct Seen {
    uint64_t value = 0;
    uint64_t scrape = 0;        // the scrape that last saw the key live
    Series* series = nullptr;   // null: folded into "other" (admission retried)
    bool provisional = false;   // its labels may still change
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

  // The key's series, admitted if there is room; null means "other".
  Series* SeriesOf(const Key& key, bool* provisional) {
    SeriesLabels l = labels_(key);
    *provisional = !l.final;
    std::string id;
    for (const auto& label : l.labels) (id += label.value) += '\xff';
    auto it = series_.find(id);
    if (it != series_.end()) return &it->second;
    if (series_.size() >= max_series_) return nullptr;
    Series s;
    s.sample.label = std::move(l.labels);
    return &series_.emplace(std::move(id), std::move(s)).first->second;
  }

  void Add(Series* s, uint64_t delta, bool live, bool closed) {
    if (!s) {
      other_ += static_cast<double>(delta);
      return;
    }
    s->sample.counter.value += static_cast<double>(delta);
    s->touched = s->touched || delta > 0 || closed;
    s->live = s->live || live;
  }

  LabelFn labels_;
  std::vector<std::string> other_labels_;
  size_t max_series_;
  uint32_t retention_;
  std::unordered_map<Key, Seen, KeyHash, KeyEq> seen_;
  std::unordered_map<std::string, Series> series_;  // by label values
  uint64_t scrapes_ = 0;
  double other_ = 0;
  uint64_t overflow_seen_ = 0;
  size_t folded_ = 0;
};

}  // namespace execflow
