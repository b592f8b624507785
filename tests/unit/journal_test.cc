#include "exporter/state/journal.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>

#include "exporter/metrics/flows.h"
#include "exporter/state/keeper.h"
#include "tests/unit/fake_map_reader.h"
#include "tests/unit/tick_clock.h"
#include "tests/unit/scratch_dir.h"

namespace execflow {
namespace {

using FlowMap = FakeMapReader<tcp_flow_key, tcp_flow_bytes>;

tcp_flow_key Flow(uint16_t sport) {
  tcp_flow_key k{};
  k.family = EXECFLOW_AF_INET;
  inet_pton(AF_INET, "10.0.0.1", k.saddr);
  inet_pton(AF_INET, "10.0.0.2", k.daddr);
  k.sport = sport;
  k.dport = 443;
  return k;
}

// A key's address, for the map calls (one object per port, kept).
const tcp_flow_key* At(uint16_t sport) {
  static std::map<uint16_t, tcp_flow_key> keys;
  return &keys.try_emplace(sport, Flow(sport)).first->second;
}

std::string Bytes(const tcp_flow_key& k) { return std::string(reinterpret_cast<const char*>(&k), sizeof(k)); }

class JournalTest : public ::testing::Test {
 protected:
  std::string Read() const {
    std::ifstream in(path_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  void Write(const std::vector<TakeRecord>& records) const {
    std::ofstream out(path_);
    for (const auto& r : records) out << EncodeTakeRecord(r);
  }
  ScratchDir scratch_{"execflow_journal"};
  const std::string dir_ = scratch_.path(), path_ = TakeJournalPath(dir_ + "/state.json", "tcp");
};

TEST(TakeRecord, EncodesOneJsonLineAndDecodesBack) {
  const TakeRecord r{18446744073709551615ull, "tcp_flows", std::string("\x00\xff\x10", 3), {7, 0}, true};
  const std::string line = EncodeTakeRecord(r);
  EXPECT_EQ(line, "{\"seq\":18446744073709551615,\"map\":\"tcp_flows\",\"key\":\"00ff10\",\"values\":[7,0],"
                  "\"taken\":true}\n");
  auto back = DecodeTakeRecord(line);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, r);
  EXPECT_EQ(DecodeTakeRecord("{\"seq\":1,").error().message, "not valid JSON");
  EXPECT_EQ(DecodeTakeRecord("{\"seq\":1,\"map\":\"m\",\"key\":\"0g\",\"values\":[],\"taken\":true}").error().message,
            "key is not hex bytes");
  EXPECT_EQ(DecodeTakeRecord("{\"seq\":1,\"map\":\"m\",\"key\":\"00\",\"values\":[-1],\"taken\":true}")
                .error()
                .message,
            "a value is not an unsigned integer");
  EXPECT_EQ(DecodeTakeRecord("{\"seq\":-1,\"map\":\"m\",\"key\":\"00\",\"values\":[],\"taken\":true}").error().message,
            "expected seq, map, key, values and taken");
}

TEST_F(JournalTest, ATakeIsRecordedBeforeAndAfterTheKernelRemovesTheEntry) {
  FlowMap map("tcp_flows", 16);
  map.Put(Flow(1000), {300, 20, 0});
  auto j = TakeJournal::Open(path_, 41);
  ASSERT_TRUE(j) << j.error().message;
  tcp_flow_bytes got{};
  ASSERT_TRUE((*j)->Take(map, At(1000), &got));
  EXPECT_EQ(got.sent, 300u);
  EXPECT_EQ(got.received, 20u);
  EXPECT_FALSE(map.Lookup(At(1000), &got)) << "the entry is out of the map";
  EXPECT_EQ((*j)->last_seq(), 42u);
  EXPECT_EQ((*j)->records(), 2u);
  auto records = LoadTakeJournal(path_);
  ASSERT_TRUE(records) << records.error().message;
  EXPECT_EQ(records->records, (std::vector<TakeRecord>{{42, "tcp_flows", Bytes(Flow(1000)), {300, 20, 0}, false},
                                                       {42, "tcp_flows", Bytes(Flow(1000)), {300, 20, 0}, true}}));
  EXPECT_TRUE(records->skipped.empty());
  struct stat st;
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);

  // An absent entry: nothing recorded, no sequence number used.
  EXPECT_EQ((*j)->Take(map, At(1000), &got).error().err, ENOENT);
  EXPECT_EQ((*j)->last_seq(), 42u);
  (*j)->Clear();
  EXPECT_EQ(Read(), "");
  EXPECT_EQ((*j)->records(), 0u);
}

// One bad line used to throw the whole journal away, and with it every take
// recorded around it: each bad line is skipped, named, and the records
// before and after it count.
TEST_F(JournalTest, ALineThatIsNotARecordIsSkippedAndNamedAndTheOthersCount) {
  Write({{1, "tcp_flows", "k", {1, 2}, false}});
  std::ofstream(path_, std::ios::app) << "garbage\n" << EncodeTakeRecord({1, "tcp_flows", "k", {3, 2}, true})
                                      << "{\"seq\":2,\"map\":\"tcp_flows\"";
  auto got = LoadTakeJournal(path_);
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got->records, (std::vector<TakeRecord>{{1, "tcp_flows", "k", {1, 2}, false},
                                                   {1, "tcp_flows", "k", {3, 2}, true}}));
  EXPECT_EQ(got->skipped, (std::vector<std::string>{path_ + " line 2: not valid JSON",
                                                    path_ + " line 4: no end of line (a write cut short)"}));
  // A whole line that is valid JSON but no record is skipped too; so is a
  // record cut exactly before its newline (its writer never finished it).
  std::ofstream(path_) << "{}\n" << EncodeTakeRecord({5, "m", "k", {1}, false}).substr(0, 50);
  got = LoadTakeJournal(path_);
  EXPECT_TRUE(got->records.empty());
  EXPECT_EQ(got->skipped.size(), 2u);
  EXPECT_EQ(LoadTakeJournal(dir_ + "/absent")->records.size(), 0u);
}

// A journal on a full disk (here: a file size limit, which cuts writes short
// at an exact offset, as ENOSPC does): a record cut short is cut off the
// file, a take whose first record cannot be written is not done (its entry
// stays in the map, counted), and every record on file stays readable.
TEST_F(JournalTest, AWriteCutShortLeavesNoTornRecordAndNoLostTake) {
  const std::string record = EncodeTakeRecord({1, "tcp_flows", Bytes(Flow(1)), {100, 0}, false});
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    signal(SIGXFSZ, SIG_IGN);
    // Room for the first take's two records and half of the next one.
    const rlim_t limit = 2 * record.size() + record.size() / 2;
    rlimit r{limit, limit};
    if (setrlimit(RLIMIT_FSIZE, &r) != 0) _exit(3);
    FlowMap map("tcp_flows", 16);
    map.Put(Flow(1), {100, 0, 0});
    map.Put(Flow(2), {200, 0, 0});
    auto j = TakeJournal::Open(path_, 0);
    if (!j) _exit(4);
    tcp_flow_bytes got{};
    if (!(*j)->Take(map, At(1), &got)) _exit(5);    // fits
    if ((*j)->Take(map, At(2), &got)) _exit(6);     // its first record is cut short: not taken
    if (!map.Lookup(At(2), &got)) _exit(7);         // still in the map
    if ((*j)->last_seq() != 1) _exit(8);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  auto got = LoadTakeJournal(path_);
  ASSERT_TRUE(got);
  EXPECT_TRUE(got->skipped.empty()) << got->skipped.front();
  ASSERT_EQ(got->records.size(), 2u);
  EXPECT_EQ(got->records[1].taken, true);

  // A process killed in the middle of a write leaves a torn line: the next
  // one reads around it and starts its own records on a line of their own.
  std::ofstream(path_, std::ios::app) << record.substr(0, 40);
  auto j = TakeJournal::Open(path_, 1);
  ASSERT_TRUE(j);
  FlowMap map("tcp_flows", 16);
  map.Put(Flow(3), {300, 0, 0});
  tcp_flow_bytes b{};
  ASSERT_TRUE((*j)->Take(map, At(3), &b));
  got = LoadTakeJournal(path_);
  EXPECT_TRUE(got->skipped.empty());
  ASSERT_EQ(got->records.size(), 4u);
  EXPECT_EQ(got->records[3].seq, 2u);
  EXPECT_EQ(got->records[3].values, (std::vector<uint64_t>{300, 0, 0}));
}

TEST_F(JournalTest, TakesAreFinishedFromTheirRecordsOrFromTheKernelMap) {
  FlowMap map("tcp_flows", 16);
  // 1: complete: the final values are the "taken" record's; the entry now in
  //    the map is a new flow of the same key, left alone.
  // 2: the process died before the kernel's take: the entry is taken now, with
  //    what it holds now.
  // 3: the process died after the kernel's take: the "taking" record's values.
  // 4, 5: one key taken, re-created, taken again: two takes.
  map.Put(Flow(1), {5, 0, 0});
  map.Put(Flow(2), {900, 7, 0});
  const std::vector<TakeRecord> records = {
      {1, "tcp_flows", Bytes(Flow(1)), {100, 1}, false}, {1, "tcp_flows", Bytes(Flow(1)), {150, 1}, true},
      {2, "tcp_flows", Bytes(Flow(2)), {800, 7}, false}, {3, "tcp_flows", Bytes(Flow(3)), {60, 6}, false},
      {4, "tcp_flows", Bytes(Flow(4)), {10, 0}, false},  {4, "tcp_flows", Bytes(Flow(4)), {10, 0}, true},
      {5, "tcp_flows", Bytes(Flow(4)), {3, 0}, false},   {5, "tcp_flows", Bytes(Flow(4)), {4, 0}, true},
      {6, "other_map", Bytes(Flow(9)), {1}, false},
  };
  const auto takes = FinishTakes(records, {&map});
  ASSERT_EQ(takes.size(), 6u);
  auto is = [&](size_t i, uint64_t seq, uint16_t sport, std::vector<uint64_t> values) {
    EXPECT_EQ(takes[i].seq, seq) << i;
    EXPECT_EQ(takes[i].key, Bytes(Flow(sport))) << i;
    EXPECT_EQ(takes[i].values, values) << i;
  };
  is(0, 1, 1, {150, 1});
  is(1, 2, 2, {900, 7, 0});
  is(2, 3, 3, {60, 6});
  is(3, 4, 4, {10, 0});
  is(4, 5, 4, {4, 0});
  EXPECT_EQ(takes[5].map, "other_map");
  EXPECT_EQ(takes[5].values, (std::vector<uint64_t>{1})) << "a map not given: its record's values";
  tcp_flow_bytes v;
  EXPECT_TRUE(map.Lookup(At(1), &v)) << "the new flow of a finished take stays";
  EXPECT_FALSE(map.Lookup(At(2), &v)) << "the unfinished take was finished";
}

// A take the killed process began, finished at start-up from the kernel map,
// is journaled with the values taken then: killed again before the next save,
// the next process finishes it with those, not with the older values of its
// first record (the bytes added since were lost).
TEST_F(JournalTest, ATakeFinishedAtStartUpIsJournaledWithItsFinalValues) {
  FlowMap map("tcp_flows", 16);
  map.Put(Flow(2), {900, 7, 1});
  Write({{2, "tcp_flows", Bytes(Flow(2)), {800, 7, 1}, false}});
  auto first = ResumeJournal(path_, /*adopted=*/true, 0, {&map});
  ASSERT_EQ(first.takes.size(), 1u);
  EXPECT_EQ(first.takes[0].values, (std::vector<uint64_t>{900, 7, 1}));
  first.journal.reset();  // killed before the next save
  auto second = ResumeJournal(path_, /*adopted=*/true, 0, {&map});
  ASSERT_EQ(second.takes.size(), 1u);
  EXPECT_EQ(second.takes[0].values, (std::vector<uint64_t>{900, 7, 1}));
}

TEST_F(JournalTest, ResumingAReplacedStateEmptiesTheJournal) {
  FlowMap map("tcp_flows", 16);
  Write({{7, "tcp_flows", Bytes(Flow(1)), {100, 1}, false}});
  auto r = ResumeJournal(path_, /*adopted=*/false, 0, {&map});
  ASSERT_NE(r.journal, nullptr);
  EXPECT_TRUE(r.takes.empty());
  EXPECT_EQ(Read(), "");
  EXPECT_EQ(r.journal->last_seq(), 0u);

  Write({{7, "tcp_flows", Bytes(Flow(1)), {100, 1}, false}});
  r = ResumeJournal(path_, /*adopted=*/true, 9, {&map});
  ASSERT_EQ(r.takes.size(), 1u);
  EXPECT_EQ(r.journal->last_seq(), 9u) << "the state file's number is higher";
  EXPECT_NE(Read(), "") << "emptied only once the state file holds the takes";

  std::ofstream(path_) << "garbage\n";
  r = ResumeJournal(path_, /*adopted=*/true, 3, {&map});
  EXPECT_TRUE(r.takes.empty()) << "nothing to replay in a line that is not a record";
  ASSERT_NE(r.journal, nullptr);
  EXPECT_EQ(r.journal->last_seq(), 3u);
}

// The state file is written with the collector's lock let go of: scrapes and
// close notices go on while a large file is written. (It was written, and
// fsynced, under the lock.) The file asks the resolver for its names while it
// writes: the lock must be free then, and held again when Save() returns.
TEST_F(JournalTest, TheStateFileIsWrittenWithoutTheCollectorsLock) {
  std::mutex mu;
  int writes = 0;
  bool free_while_writing = true;
  auto file = std::make_shared<StateFile>(dir_ + "/state.json", SavedTables{}, [&] {
    ++writes;
    if (mu.try_lock()) {
      mu.unlock();
    } else {
      free_while_writing = false;
    }
    return SavedWorkloads{};
  });
  FlowMap map("tcp_flows", 16);
  FlowTable table(FlowLabels{}, 100, std::chrono::minutes(5));
  StateKeeper keeper;
  keeper.Keep<tcp_flow_key>("tcp_sent", &table, &map, 0);
  std::unique_lock lock(mu);
  keeper.Start(file, nullptr, "tcp");
  keeper.Save(lock);
  EXPECT_TRUE(lock.owns_lock());
  table.Closed(Flow(7), 100);
  keeper.Save(lock);
  EXPECT_TRUE(lock.owns_lock());
  EXPECT_EQ(writes, 2);
  EXPECT_TRUE(free_while_writing);
}

// The restart the journal is for: a series that sums several flows (no sport
// label) was saved at a scrape; then one of its flows closed and was taken
// out of the kernel map, and the process was killed before the next scrape
// saved it. The next process seeds itself with the saved state and the
// journal and exports what the killed one would have: nothing decreases.
TEST_F(JournalTest, AKillBetweenATakeAndTheNextSaveLosesNothing) {
  const FlowLabels no_sport{true, false, true, true};
  auto scrape = [](FlowTable& t, const FlowMap& map) {
    std::vector<uint8_t> keys, values;
    const size_t n = *map.ReadAll(keys, values);
    t.Scrape(keys.data(), values.data(), sizeof(tcp_flow_bytes), n, 0);
  };
  auto exported = [](const FlowTable& t) {
    std::map<std::string, double> m;
    for (const auto& s : t.Export()) m[s.label[2].value] = s.counter.value;
    return m;
  };
  for (bool died_before_kernel_take : {false, true}) {
    SCOPED_TRACE(died_before_kernel_take ? "killed before the kernel's take" : "killed after the take");
    FlowMap map("tcp_flows", 16);
    map.Put(Flow(1), {1000, 0, 0});
    map.Put(Flow(2), {2000, 0, 0});
    FlowTable before(no_sport, 100, std::chrono::minutes(5), nullptr, TickPerScrape());
    auto journal = ResumeJournal(path_, false, 0, {&map}).journal;
    scrape(before, map);
    SeriesTableState saved = before.ExportState();
    saved.taken = journal->last_seq();
    journal->Clear();

    // Flow 2 sends 500 more and closes: taken out of the map, journaled, not saved.
    tcp_flow_bytes b;
    ASSERT_TRUE(map.Take(At(2), &b));
    map.Put(Flow(2), {2500, 0, 0});
    if (died_before_kernel_take) {
      Write({{saved.taken + 1, "tcp_flows", Bytes(Flow(2)), {2500, 0}, false}});
    } else {
      ASSERT_TRUE(journal->Take(map, At(2), &b));
      before.Closed(Flow(2), b.sent);
    }
    journal.reset();
    scrape(before, map);
    EXPECT_EQ(exported(before), (std::map<std::string, double>{{"443", 3500}}));

    FlowTable after(no_sport, 100, std::chrono::minutes(5), nullptr, TickPerScrape());
    ASSERT_TRUE(after.ImportState(saved));
    auto resumed = ResumeJournal(path_, true, saved.taken, {&map});
    for (const auto& t : resumed.takes) {
      tcp_flow_key key;
      std::memcpy(&key, t.key.data(), sizeof(key));
      if (t.seq > saved.taken) after.Closed(key, t.values[0]);
    }
    scrape(after, map);
    EXPECT_EQ(exported(after), (std::map<std::string, double>{{"443", 3500}}));
  }
}

}  // namespace
}  // namespace execflow
