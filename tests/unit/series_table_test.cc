#include "tests/unit/scrape_live.h"
#include "tests/unit/tick_clock.h"
#include "exporter/metrics/series_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

namespace execflow {
namespace {

struct TestKey {
  uint32_t id;
  uint32_t zero = 0;  // padding made explicit: keys are compared as bytes
};

// The table as it was before it followed the kernel's read order (one hash
// lookup per key, labels rendered on every admission attempt): the
// behaviour the faster table must keep, sample for sample.
class ReferenceTable {
 public:
  using LabelFn = std::function<SeriesLabels(const TestKey&)>;
  ReferenceTable(LabelFn labels, std::vector<std::string> other_labels, size_t max_series,
                 uint32_t retention)
      : labels_(std::move(labels)), other_labels_(std::move(other_labels)),
        max_series_(max_series), retention_(retention) {}

  void Scrape(const std::vector<Live<TestKey>>& live, uint64_t overflow) {
    for (auto& [_, s] : series_) s.live = false;
    folded_ = 0;
    ++scrapes_;
    for (const auto& l : live) {
      if (l.value == 0) continue;  // nothing counted yet: no series
      Seen& last = seen_[l.key.id];
      const uint64_t delta = l.value >= last.value ? l.value - last.value : l.value;
      last.value = l.value;
      last.scrape = scrapes_;
      if (!last.series || last.provisional) last.series = SeriesOf(l.key, &last.provisional);
      if (!last.series) ++folded_;
      Add(last.series, delta, true, false);
    }
    std::erase_if(seen_, [this](const auto& kv) { return kv.second.scrape != scrapes_; });
    if (overflow > overflow_seen_) {
      other_ += static_cast<double>(overflow - overflow_seen_);
      overflow_seen_ = overflow;
    }
    retained_ = 0;
    for (auto it = series_.begin(); it != series_.end();) {
      Series& s = it->second;
      s.idle_scrapes = s.live || s.touched ? 0 : s.idle_scrapes + 1;
      s.touched = false;
      if (s.idle_scrapes > retention_) {
        it = series_.erase(it);
        continue;
      }
      retained_ += !s.live;
      ++it;
    }
    // Retained series have a room of max_series of their own: the longest idle
    // go first, ties by label values.
    while (retained_ > max_series_) {
      auto oldest = series_.end();
      for (auto it = series_.begin(); it != series_.end(); ++it) {
        if (it->second.live) continue;
        if (oldest == series_.end() || it->second.idle_scrapes > oldest->second.idle_scrapes) oldest = it;
      }
      series_.erase(oldest);
      --retained_;
    }
  }

  void Closed(const TestKey& key, uint64_t final_value) {
    Seen seen;
    if (auto it = seen_.find(key.id); it != seen_.end()) {
      seen = it->second;
      seen_.erase(it);
    }
    const uint64_t delta = final_value >= seen.value ? final_value - seen.value : final_value;
    bool provisional = false;
    Add(seen.series && !seen.provisional ? seen.series : SeriesOf(key, &provisional), delta, false, true);
  }

  std::vector<prometheus::ClientMetric> Export() const {
    std::vector<prometheus::ClientMetric> out;
    for (const auto& [_, s] : series_) out.push_back(s.sample);
    if (other_ > 0) {
      prometheus::ClientMetric other;
      for (const auto& name : other_labels_) other.label.push_back({name, "other"});
      other.counter.value = other_;
      out.push_back(std::move(other));
    }
    return out;
  }
  size_t folded() const { return folded_; }

 private:
  struct Series {
    prometheus::ClientMetric sample;
    bool live = false;
    bool touched = false;
    uint32_t idle_scrapes = 0;
  };
  struct Seen {
    uint64_t value = 0;
    uint64_t scrape = 0;
    Series* series = nullptr;
    bool provisional = false;
  };
  Series* SeriesOf(const TestKey& key, bool* provisional) {
    SeriesLabels l = labels_(key);
    *provisional = !l.final;
    std::string id;
    for (const auto& label : l.labels) (id += label.value) += '\xff';
    auto it = series_.find(id);
    if (it != series_.end()) return &it->second;
    if (series_.size() - retained_ >= max_series_) return nullptr;
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
  size_t retained_ = 0;
  std::map<uint32_t, Seen> seen_;
  std::map<std::string, Series> series_;
  uint64_t scrapes_ = 0;
  double other_ = 0;
  uint64_t overflow_seen_ = 0;
  size_t folded_ = 0;
};

using Table = SeriesTable<TestKey>;
using Entry = Live<TestKey>;

// label value -> counter, whatever the order of the samples.
std::map<std::string, double> Samples(const std::vector<prometheus::ClientMetric>& samples) {
  std::map<std::string, double> m;
  for (const auto& s : samples) {
    std::string k;
    for (const auto& l : s.label) k += (k.empty() ? "" : "|") + l.name + "=" + l.value;
    EXPECT_EQ(m.count(k), 0u) << "two samples with labels " << k;
    m[k] = s.counter.value;
  }
  return m;
}

SeriesLabels ById(const TestKey& k) { return {{{"id", std::to_string(k.id)}}, true}; }

TEST(SeriesTable, KeysReadInAnotherOrderKeepTheirOwnDeltas) {
  Table t(ById, {"id"}, 100, std::chrono::seconds(1), TickPerScrape());
  ScrapeLive(t, {{{1}, 10}, {{2}, 20}, {{3}, 30}}, 0);
  // Reversed, one key gone (no close), one new in the middle.
  ScrapeLive(t, {{{3}, 35}, {{4}, 4}, {{1}, 11}}, 0);
  EXPECT_EQ(Samples(t.Export()), (std::map<std::string, double>{
                                     {"id=1", 11}, {"id=2", 20}, {"id=3", 35}, {"id=4", 4}}));
  // Key 2 is back with a new entry: it restarts below what was seen.
  ScrapeLive(t, {{{2}, 5}, {{1}, 12}, {{3}, 35}, {{4}, 4}}, 0);
  EXPECT_EQ(Samples(t.Export()), (std::map<std::string, double>{
                                     {"id=1", 12}, {"id=2", 25}, {"id=3", 35}, {"id=4", 4}}));
}

TEST(SeriesTable, ASeriesWhoseLabelsChangeKeepsWhatItHadAndTheKeyMovesOn) {
  std::string pod;  // empty until "the kubelet" names it
  bool named = false;
  Table t([&](const TestKey&) { return SeriesLabels{{{"pod", pod}}, named}; }, {"pod"}, 100,
          std::chrono::seconds(1), TickPerScrape());
  ScrapeLive(t, {{{1}, 100}}, 0);
  EXPECT_EQ(Samples(t.Export()), (std::map<std::string, double>{{"pod=", 100}}));
  pod = "web";
  named = true;
  ScrapeLive(t, {{{1}, 150}}, 0);
  EXPECT_EQ(Samples(t.Export()), (std::map<std::string, double>{{"pod=", 100}, {"pod=web", 50}}));
  pod = "renamed";  // final labels are not asked again
  ScrapeLive(t, {{{1}, 170}}, 0);
  EXPECT_EQ(Samples(t.Export()), (std::map<std::string, double>{{"pod=web", 70}}))
      << "the provisional series had no delta for a scrape: forgotten after retention 1";
}

TEST(SeriesTable, ASeriesRemovedAfterRetentionIsGoneAndASnapshotStillBuildsIt) {
  Table t(ById, {"id"}, 100, std::chrono::seconds(1), TickPerScrape());
  ScrapeLive(t, {{{1}, 7}, {{2}, 9}}, 0);
  t.Closed({1}, 8);
  ScrapeLive(t, {{{2}, 9}}, 0);
  EXPECT_EQ(Samples(t.Export()), (std::map<std::string, double>{{"id=1", 8}, {"id=2", 9}}))
      << "exported for one more scrape after its close";
  const SeriesSnapshot before = t.Snapshot();
  ScrapeLive(t, {{{2}, 9}, {{3}, 1}}, 0);
  EXPECT_EQ(Samples(t.Export()), (std::map<std::string, double>{{"id=1", 8}, {"id=2", 9}, {"id=3", 1}}))
      << "and for its retention (one scrape here) after the first scrape that showed it";
  ScrapeLive(t, {{{2}, 9}, {{3}, 1}}, 0);
  EXPECT_EQ(Samples(t.Export()), (std::map<std::string, double>{{"id=2", 9}, {"id=3", 1}}));
  ScrapeLive(t, {{{2}, 9}, {{3}, 1}, {{4}, 2}}, 0);  // id 4 takes id 1's place in the table
  EXPECT_EQ(Samples(t.Export()), (std::map<std::string, double>{{"id=2", 9}, {"id=3", 1}, {"id=4", 2}}));
  EXPECT_EQ(Samples(before.Build()), (std::map<std::string, double>{{"id=1", 8}, {"id=2", 9}}))
      << "a snapshot taken before keeps its labels and values";
}

TEST(SeriesTable, AFoldedKeyIsAdmittedOnceASeriesStopsBeingLive) {
  Table t(ById, {"id"}, 1, std::chrono::seconds(1), TickPerScrape());
  ScrapeLive(t, {{{1}, 10}, {{2}, 20}}, 0);
  EXPECT_EQ(t.folded(), 1u);
  EXPECT_EQ(Samples(t.Export()), (std::map<std::string, double>{{"id=1", 10}, {"id=other", 20}}));
  t.Closed({1}, 10);
  ScrapeLive(t, {{{2}, 25}}, 0);  // id 1 is retained from the end of this scrape
  EXPECT_EQ(t.folded(), 1u);
  ScrapeLive(t, {{{2}, 27}}, 0);  // a retained series leaves its room to live ones
  EXPECT_EQ(t.folded(), 0u);
  EXPECT_EQ(Samples(t.Export()), (std::map<std::string, double>{{"id=1", 10}, {"id=2", 2}, {"id=other", 25}}))
      << "only the deltas after admission go to the key's own series";
  ScrapeLive(t, {{{2}, 30}}, 0);
  EXPECT_EQ(Samples(t.Export()), (std::map<std::string, double>{{"id=2", 5}, {"id=other", 25}}))
      << "id 1's retention ended";
}

TEST(SeriesTable, ABuildIsTheSamplesOfTheScrapeItWasTakenAt) {
  Table t(ById, {"id"}, 100, std::chrono::seconds(5), TickPerScrape());
  ScrapeLive(t, {{{1}, 1}, {{2}, 2}}, 3);
  const SeriesSnapshot first = t.Snapshot();
  ScrapeLive(t, {{{1}, 10}, {{2}, 20}}, 30);
  EXPECT_EQ(Samples(first.Build()),
            (std::map<std::string, double>{{"id=1", 1}, {"id=2", 2}, {"id=other", 3}}));
  EXPECT_EQ(Samples(t.Snapshot().Build()),
            (std::map<std::string, double>{{"id=1", 10}, {"id=2", 20}, {"id=other", 30}}));
  EXPECT_EQ(first.size(), 3u);
}

TEST(SeriesTable, SnapshotsOutliveTheLabelsOfThousandsOfForgottenSeries) {
  // Enough series forgotten for the table to move the labels still in use.
  Table t(ById, {"id"}, 100000, std::chrono::seconds(1), TickPerScrape());
  std::vector<Entry> all;
  for (uint32_t id = 0; id < 5000; ++id) all.push_back({{id}, id + 1u});
  ScrapeLive(t, all, 0);
  const SeriesSnapshot before = t.Snapshot();
  std::vector<Entry> kept(all.begin(), all.begin() + 500);
  for (uint32_t id = 500; id < 5000; ++id) t.Closed({id}, id + 1u);
  for (int i = 0; i < 3; ++i) ScrapeLive(t, kept, 0);
  std::map<std::string, double> want;
  for (const auto& l : kept) want["id=" + std::to_string(l.key.id)] = l.value;
  EXPECT_EQ(Samples(t.Export()), want);
  const auto old = Samples(before.Build());
  EXPECT_EQ(old.size(), 5000u);
  EXPECT_EQ(old.at("id=4999"), 5000);
  for (uint32_t id = 5000; id < 5100; ++id) kept.push_back({{id}, 1});  // new series after the move
  ScrapeLive(t, kept, 0);
  want.clear();
  for (const auto& l : kept) want["id=" + std::to_string(l.key.id)] = l.value;
  EXPECT_EQ(Samples(t.Export()), want);
}

// Many scrapes of a map that changes as a kernel map does (keys added in
// the middle, removed, closed, re-created lower, now and then read in
// another order), workloads named late, series folded and forgotten: every
// export equals the reference table's.
SeriesLabels ByGroup(const TestKey& k) { return {{{"g", std::to_string(k.id / 10)}}, true}; }

TEST(SeriesTable, ATableSeededWithAnotherOnesStateGoesOnExactlyAsIt) {
  // Two series room: group 2 folds into "other"; group 0 sums a closed key and a live one.
  Table old(ByGroup, {"g"}, 2, std::chrono::seconds(100), TickPerScrape());
  ScrapeLive(old, {{{1}, 10}, {{2}, 20}, {{11}, 5}, {{21}, 7}}, 3);
  old.Closed({1}, 12);
  ScrapeLive(old, {{{2}, 20}, {{11}, 5}, {{21}, 7}}, 3);
  const auto before = Samples(old.Export());
  EXPECT_EQ(before, (std::map<std::string, double>{{"g=0", 32}, {"g=1", 5}, {"g=other", 10}}));

  const SeriesTableState state = old.ExportState();
  EXPECT_EQ(state.other_labels, std::vector<std::string>{"g"});
  ASSERT_EQ(state.series.size(), 2u);
  EXPECT_EQ(state.series[0], (SeriesState{{{"g", "0"}}, 12, true})) << "key 1's final total";
  EXPECT_EQ(state.series[1], (SeriesState{{{"g", "1"}}, 0, true}));
  EXPECT_EQ(state.other, 0) << "the folded key and the overflow are still in the kernel";

  // A restart that adopts the kernel maps: the same live keys, read whole.
  Table fresh(ByGroup, {"g"}, 2, std::chrono::seconds(100), TickPerScrape());
  ASSERT_TRUE(fresh.ImportState(state));
  ScrapeLive(fresh, {{{2}, 20}, {{11}, 5}, {{21}, 7}}, 3);
  EXPECT_EQ(Samples(fresh.Export()), before);
  EXPECT_EQ(fresh.folded(), old.folded());
  EXPECT_EQ(fresh.ExportState(), state);

  // Then the same deltas as the table that never restarted.
  for (Table* t : {&old, &fresh}) {
    t->Closed({11}, 9);
    ScrapeLive(*t, {{{2}, 30}, {{3}, 4}, {{21}, 8}, {{22}, 1}}, 5);
  }
  EXPECT_EQ(Samples(fresh.Export()), Samples(old.Export()));
  EXPECT_EQ(Samples(fresh.Export()),
            (std::map<std::string, double>{{"g=0", 46}, {"g=1", 9}, {"g=other", 14}}));
  EXPECT_EQ(fresh.ExportState(), old.ExportState());
}

TEST(SeriesTable, ARetiredSeriesIsSeededWithItsFinalTotalAndRetainedAgain) {
  Table old(ById, {"id"}, 100, std::chrono::seconds(2), TickPerScrape());
  ScrapeLive(old, {{{1}, 10}, {{2}, 20}}, 0);
  old.Closed({1}, 15);
  ScrapeLive(old, {{{2}, 20}}, 0);
  Table fresh(ById, {"id"}, 100, std::chrono::seconds(2), TickPerScrape());
  ASSERT_TRUE(fresh.ImportState(old.ExportState()));
  ScrapeLive(fresh, {{{2}, 20}}, 0);
  EXPECT_EQ(Samples(fresh.Export()), (std::map<std::string, double>{{"id=1", 15}, {"id=2", 20}}));
  ScrapeLive(fresh, {{{2}, 20}}, 0);
  ScrapeLive(fresh, {{{2}, 20}}, 0);
  EXPECT_EQ(Samples(fresh.Export()), (std::map<std::string, double>{{"id=2", 20}}))
      << "retention counts again from the restart";
}

// A key that moved (a workload named late) keeps what it counted in its
// first series; the second one got only its deltas, from its base on.
// Nothing in the state is negative.
TEST(SeriesTable, AKeyThatMovedSeriesKeepsItsBaseAndNothingIsNegative) {
  std::string pod;
  bool named = false;
  auto labels = [&](const TestKey&) { return SeriesLabels{{{"pod", pod}}, named}; };
  Table old(labels, {"pod"}, 100, std::chrono::seconds(100), TickPerScrape());
  ScrapeLive(old, {{{1}, 100}}, 0);
  pod = "web";
  named = true;
  ScrapeLive(old, {{{1}, 150}}, 0);
  const SeriesTableState state = old.ExportState();
  ASSERT_EQ(state.series.size(), 2u);
  EXPECT_EQ(state.series[0], (SeriesState{{{"pod", "web"}}, 0, true})) << "all it has is its key's 50";
  EXPECT_EQ(state.series[1], (SeriesState{{{"pod", ""}}, 100, false}));
  ASSERT_EQ(state.keys.size(), 1u);
  EXPECT_EQ(state.keys[0], (KeyState{std::string("\x01\0\0\0\0\0\0\0", 8), 0, 100}));
  Table fresh(labels, {"pod"}, 100, std::chrono::seconds(100), TickPerScrape());
  ASSERT_TRUE(fresh.ImportState(state));
  ScrapeLive(fresh, {{{1}, 150}}, 0);
  EXPECT_EQ(Samples(fresh.Export()), Samples(old.Export()));
  ScrapeLive(fresh, {{{1}, 170}}, 0);
  EXPECT_EQ(Samples(fresh.Export()), (std::map<std::string, double>{{"pod=", 100}, {"pod=web", 70}}));
}

// The restart that lowered a series: a workload's keys were counted under its
// name, then it went while no exporter ran, and a fresh resolver cannot name
// it. Restored keys stay in the series they had, whatever their labels are now.
TEST(SeriesTable, RestoredKeysStayInTheirSeriesWhateverTheirLabelsAreNow) {
  std::string pod = "web";
  bool named = true;
  auto labels = [&](const TestKey&) { return SeriesLabels{{{"pod", pod}}, named}; };
  Table old(labels, {"pod"}, 100, std::chrono::seconds(100), TickPerScrape());
  ScrapeLive(old, {{{1}, 40}, {{2}, 7}}, 0);
  const SeriesTableState state = old.ExportState();
  EXPECT_EQ(state.series, (std::vector<SeriesState>{{{{"pod", "web"}}, 0, true}}));

  pod = "";  // gone: nothing names it any more
  named = false;
  Table fresh(labels, {"pod"}, 100, std::chrono::seconds(100), TickPerScrape());
  ASSERT_TRUE(fresh.ImportState(state));
  ScrapeLive(fresh, {{{1}, 40}, {{2}, 9}}, 0);
  EXPECT_EQ(Samples(fresh.Export()), (std::map<std::string, double>{{"pod=web", 49}}));
  fresh.Closed({1}, 41);
  ScrapeLive(fresh, {{{2}, 9}, {{3}, 5}}, 0);
  EXPECT_EQ(Samples(fresh.Export()), (std::map<std::string, double>{{"pod=web", 50}, {"pod=", 5}}))
      << "a new key is labelled as it is now";
}

// A key not named yet when the state was saved goes on from the value it had
// then: named after the restart, it moves as it would have, and the series it
// leaves keeps what it exported.
TEST(SeriesTable, AProvisionalKeyIsNamedAfterARestartAndMovesOnlyItsLaterCounts) {
  std::string pod;
  bool named = false;
  auto labels = [&](const TestKey&) { return SeriesLabels{{{"pod", pod}}, named}; };
  Table old(labels, {"pod"}, 100, std::chrono::seconds(100), TickPerScrape());
  ScrapeLive(old, {{{1}, 30}}, 0);
  ScrapeLive(old, {{{1}, 40}}, 0);
  const SeriesTableState state = old.ExportState();
  ASSERT_EQ(state.keys.size(), 1u);
  EXPECT_TRUE(state.keys[0].provisional);
  EXPECT_EQ(state.keys[0].seen, 40u);
  EXPECT_EQ(state.series, (std::vector<SeriesState>{{{{"pod", ""}}, 0, true}}));
  pod = "web";
  named = true;
  Table fresh(labels, {"pod"}, 100, std::chrono::seconds(100), TickPerScrape());
  ASSERT_TRUE(fresh.ImportState(state));
  ScrapeLive(fresh, {{{1}, 45}}, 0);
  EXPECT_EQ(Samples(fresh.Export()), (std::map<std::string, double>{{"pod=", 40}, {"pod=web", 5}}));
  ScrapeLive(fresh, {{{1}, 50}}, 0);
  EXPECT_EQ(Samples(fresh.Export()), (std::map<std::string, double>{{"pod=", 40}, {"pod=web", 10}}));
}

// What a forged or damaged state file could make of a table: each is refused
// whole, and the table is left as it was.
TEST(SeriesTable, AStateItCouldNotHaveExportedIsRefused) {
  Table t(ById, {"id"}, 2, std::chrono::seconds(100), TickPerScrape());
  auto state = [] {
    SeriesTableState s;
    s.other_labels = {"id"};
    s.series = {{{{"id", "1"}}, 5, true}};
    s.keys = {{std::string(8, '\1'), 0, 0}};
    return s;
  };
  SeriesTableState bad = state();
  bad.keys[0].key = std::string(7, '\1');
  EXPECT_FALSE(t.ImportState(bad)) << "a key of another size";
  bad = state();
  bad.keys[0].series = 1;
  EXPECT_FALSE(t.ImportState(bad)) << "a series index out of range";
  bad = state();
  bad.keys[0].series = -2;
  EXPECT_FALSE(t.ImportState(bad));
  bad = state();
  bad.keys.push_back(bad.keys[0]);
  EXPECT_FALSE(t.ImportState(bad)) << "a key twice";
  bad = state();
  for (int i = 2; i < 7; ++i) bad.series.push_back({{{"id", std::to_string(i)}}, 1, false});
  EXPECT_FALSE(t.ImportState(bad)) << "more series than 2 x max_series";
  EXPECT_FALSE(t.ImportState(state(), /*max_keys=*/0)) << "more keys than the map holds";
  ScrapeLive(t, {}, 0);
  EXPECT_TRUE(t.Export().empty());
  EXPECT_TRUE(t.ImportState(state()));
}

TEST(SeriesTable, AStateOfOtherLabelNamesIsRefusedAndChangesNothing) {
  Table old(ById, {"id"}, 100, std::chrono::seconds(100), TickPerScrape());
  old.Closed({1}, 5);
  ScrapeLive(old, {}, 0);
  Table other(ByGroup, {"g"}, 100, std::chrono::seconds(100), TickPerScrape());
  EXPECT_FALSE(other.ImportState(old.ExportState()));
  ScrapeLive(other, {}, 0);
  EXPECT_TRUE(other.Export().empty());
}

TEST(SeriesTable, ChangesMoveOnlyWhenTheRetiredStateMayHave) {
  Table t(ById, {"id"}, 100, std::chrono::seconds(100), TickPerScrape());
  ScrapeLive(t, {{{1}, 10}, {{2}, 20}}, 0);
  uint64_t c = t.changes();
  ScrapeLive(t, {{{1}, 11}, {{2}, 25}}, 4);
  EXPECT_EQ(t.changes(), c) << "live keys counting and the kernel's overflow retire nothing";
  t.Closed({1}, 12);
  EXPECT_GT(t.changes(), c);
  c = t.changes();
  ScrapeLive(t, {{{2}, 26}}, 4);
  c = t.changes();
  ScrapeLive(t, {}, 4);  // key 2 vanished without a close
  EXPECT_GT(t.changes(), c);
}

TEST(SeriesTable, EveryScrapeEqualsTheReferenceTable) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    std::mt19937 rng(seed);
    auto pick = [&](uint32_t n) { return static_cast<uint32_t>(rng() % n); };
    const size_t max_series = 3 + pick(20);
    const uint32_t retention = 1 + pick(3);
    std::map<uint32_t, uint32_t> group;  // key -> its label; changes only while provisional
    std::set<uint32_t> provisional;
    auto labels = [&](const TestKey& k) {
      return SeriesLabels{{{"g", std::to_string(group[k.id])}}, provisional.count(k.id) == 0};
    };
    Table table(labels, {"g"}, max_series, std::chrono::seconds(retention), TickPerScrape());
    ReferenceTable ref(labels, {"g"}, max_series, retention);
    std::vector<Entry> map;  // the kernel map in its read order
    uint64_t overflow = 0;
    uint32_t next_id = 0;
    for (int scrape = 0; scrape < 300; ++scrape) {
      for (int i = pick(6); i > 0; --i) {  // new keys, anywhere in the order
        const uint32_t id = next_id++ % 60;  // ids come back: a reused 4-tuple
        if (std::any_of(map.begin(), map.end(), [&](const Entry& l) { return l.key.id == id; })) continue;
        group[id] = pick(30);
        if (pick(4) == 0) provisional.insert(id);
        map.insert(map.begin() + pick(map.size() + 1), Entry{{id}, pick(50)});
      }
      for (auto& l : map) l.value += pick(3) == 0 ? 0 : pick(1000);
      for (int i = pick(3); i > 0 && !map.empty(); --i) {  // closes
        const size_t at = pick(map.size());
        const uint64_t final_value = map[at].value + pick(100);
        table.Closed(map[at].key, final_value);
        ref.Closed(map[at].key, final_value);
        map.erase(map.begin() + at);
      }
      if (pick(10) == 0 && !map.empty()) map.erase(map.begin() + pick(map.size()));  // gone unseen
      if (pick(15) == 0) std::shuffle(map.begin(), map.end(), rng);
      for (auto it = provisional.begin(); it != provisional.end();) {  // the kubelet names some
        if (pick(4) == 0) {
          group[*it] = pick(30);
          it = provisional.erase(it);
        } else {
          ++it;
        }
      }
      overflow += pick(4) == 0 ? pick(500) : 0;
      ScrapeLive(table, map, overflow);
      ref.Scrape(map, overflow);
      ASSERT_EQ(Samples(table.Export()), Samples(ref.Export())) << "seed " << seed << " scrape " << scrape;
      ASSERT_EQ(table.folded(), ref.folded()) << "seed " << seed << " scrape " << scrape;
    }
  }
}

}  // namespace
}  // namespace execflow
