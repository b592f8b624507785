#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <tuple>

#include "tests/unit/tick_clock.h"
#include "exporter/collectors/exec_collector.h"
#include "tests/unit/fake_map_reader.h"
#include "tests/unit/scratch_dir.h"

namespace execflow {
namespace {

constexpr uint64_t kHost = 1;

struct ExecFakes {
  explicit ExecFakes(ExecLabels labels = {}, WorkloadOf workloads = nullptr)
      // The execs and failures tables read the one clock: two ticks per scrape, so 2 s is one scrape.
      : tables(labels, std::move(workloads), std::chrono::seconds(2), TickPerScrape()) {}
  FakeMapReader<exec_key, __u64> counts{"exec_counts", 100};
  FakeMapReader<exec_failure_key, __u64> failures{"exec_failures", 50};
  exec_loss loss{};
  ExecTables tables;
  ExecSources Sources(bool with_failures = true) {
    return {&counts, with_failures ? &failures : nullptr, &loss, 0, nullptr, nullptr};
  }
};

TEST(CollectExec, CountsPerUidAndFailuresPerErrnoName) {
  ExecFakes f;
  f.counts.Put({kHost, 0, 0}, 12);
  f.counts.Put({kHost, 1000, 0}, 200);
  f.failures.Put({kHost, 1000, 2}, 50);
  f.failures.Put({kHost, 0, 13}, 3);
  int errors = 0;
  auto fams = CollectExec(f.Sources(), &f.tables, &errors);
  EXPECT_EQ(errors, 0);
  auto* a = FindSample(fams, "execflow_execs_total", {{"uid", "1000"}});
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->counter.value, 200);
  EXPECT_EQ(FindSample(fams, "execflow_execs_total", {{"uid", "0"}})->counter.value, 12);
  EXPECT_EQ(FindSample(fams, "execflow_execs_total", {{"uid", "other"}}), nullptr);
  auto* b = FindSample(fams, "execflow_exec_failures_total", {{"uid", "1000"}, {"errno", "ENOENT"}});
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->counter.value, 50);
  EXPECT_EQ(FindSample(fams, "execflow_exec_failures_total", {{"uid", "0"}, {"errno", "EACCES"}})
                ->counter.value,
            3);
}

TEST(CollectExec, OverflowGoesToOtherAndMapMetrics) {
  ExecFakes f;
  f.counts.Put({kHost, 1, 0}, 5);
  f.loss.uid_overflow = 7;
  f.loss.failure_overflow = 2;
  f.loss.events_dropped = 9;
  ExecSources src = f.Sources();
  src.events_delivered = 4;
  int errors = 0;
  auto fams = CollectExec(src, &f.tables, &errors);
  EXPECT_EQ(FindSample(fams, "execflow_execs_total", {{"uid", "other"}})->counter.value, 7);
  EXPECT_EQ(FindSample(fams, "execflow_exec_failures_total", {{"uid", "other"}, {"errno", "other"}})
                ->counter.value,
            2);
  EXPECT_EQ(FindSample(fams, "execflow_exec_events_dropped_total", {})->counter.value, 9);
  EXPECT_EQ(FindSample(fams, "execflow_exec_events_total", {})->counter.value, 4);
  EXPECT_EQ(FindSample(fams, "execflow_bpf_map_entries", {{"map", "exec_counts"}})->gauge.value, 1);
  EXPECT_EQ(FindSample(fams, "execflow_bpf_map_capacity", {{"map", "exec_counts"}})->gauge.value, 100);
  EXPECT_EQ(FindSample(fams, "execflow_bpf_map_capacity", {{"map", "exec_failures"}})->gauge.value, 50);
  EXPECT_EQ(FindSample(fams, "execflow_bpf_map_update_failures_total", {{"map", "exec_counts"}})
                ->counter.value,
            7);
}

TEST(CollectExec, FailuresOffHasNoFailureFamily) {
  ExecFakes f;
  int errors = 0;
  auto fams = CollectExec(f.Sources(false), &f.tables, &errors);
  for (const auto& fam : fams) EXPECT_NE(fam.name, "execflow_exec_failures_total");
  EXPECT_EQ(FindSample(fams, "execflow_bpf_map_entries", {{"map", "exec_failures"}}), nullptr);
}

TEST(CollectExec, ReadErrorIsCountedAndTheRestIsReturned) {
  ExecFakes f;
  f.counts.FailWith(EPERM);
  f.failures.Put({kHost, 5, 2}, 1);
  int errors = 0;
  auto fams = CollectExec(f.Sources(), &f.tables, &errors);
  EXPECT_EQ(errors, 1);
  EXPECT_EQ(FindSample(fams, "execflow_exec_failures_total", {{"uid", "5"}, {"errno", "ENOENT"}})
                ->counter.value,
            1);
}

// Cgroups 10 and 11 are two containers of pod web in namespace shop, 20 is a
// podman container, 1 the host.
std::pair<Workload, bool> FakeWorkloads(uint64_t id) {
  if (id == 10) return {{"shop", "web", "nginx"}, true};
  if (id == 11) return {{"shop", "web", "sidecar"}, true};
  if (id == 20) return {{"", "", "4f3c2b1a0000"}, true};
  return {{}, true};
}

TEST(CollectExec, WorkloadLabelsComeFromTheCgroupAndKeysThatAgreeShareASeries) {
  ExecFakes f({false, true, true, false}, FakeWorkloads);  // namespace, pod
  f.counts.Put({10, 0, 0}, 30);
  f.counts.Put({11, 0, 0}, 1);
  f.counts.Put({11, 1000, 0}, 4);
  f.counts.Put({20, 0, 0}, 31);
  f.counts.Put({kHost, 0, 0}, 100);
  f.failures.Put({10, 0, 2}, 6);
  int errors = 0;
  auto fams = CollectExec(f.Sources(), &f.tables, &errors);
  EXPECT_EQ(FindSample(fams, "execflow_execs_total", {{"namespace", "shop"}, {"pod", "web"}})->counter.value, 35);
  EXPECT_EQ(FindSample(fams, "execflow_execs_total", {{"namespace", ""}, {"pod", ""}})->counter.value, 131);
  EXPECT_EQ(FindSample(fams, "execflow_exec_failures_total",
                       {{"errno", "ENOENT"}, {"namespace", "shop"}, {"pod", "web"}})->counter.value,
            6);
  ExecTables all({true, true, true, true}, FakeWorkloads, std::chrono::seconds(2), TickPerScrape());
  fams = CollectExec(f.Sources(), &all, &errors);
  EXPECT_EQ(FindSample(fams, "execflow_execs_total",
                       {{"uid", "0"}, {"namespace", ""}, {"pod", ""}, {"container", "4f3c2b1a0000"}})
                ->counter.value,
            31);
  EXPECT_EQ(errors, 0);
}

TEST(CollectExec, KeysOfGoneCgroupsLeaveTheMapAndTheirTotalsStay) {
  ExecFakes f({true, true, true, true}, FakeWorkloads);
  std::set<uint64_t> gone;
  ExecSources src = f.Sources();
  src.gone = [&](uint64_t id, std::chrono::steady_clock::time_point) { return gone.count(id) > 0; };
  f.counts.Put({10, 0, 0}, 30);
  f.failures.Put({10, 0, 2}, 6);
  int errors = 0;
  const std::vector<std::pair<std::string, std::string>> nginx{
      {"uid", "0"}, {"namespace", "shop"}, {"pod", "web"}, {"container", "nginx"}};
  EXPECT_EQ(FindSample(CollectExec(src, &f.tables, &errors), "execflow_execs_total", nginx)->counter.value, 30);
  gone.insert(10);
  // Journaled (bpf.state_file): each take is recorded before and after the kernel's.
  ScratchDir dir("execflow_exec_journal");
  const std::string path = TakeJournalPath(dir.path() + "/state.json", "exec");
  auto journal = TakeJournal::Open(path, 0);
  ASSERT_TRUE(journal) << journal.error().message;
  src.take = [j = journal->get()](const MapReader& m, const void* k, void* v) { return j->Take(m, k, v); };
  auto fams = CollectExec(src, &f.tables, &errors);
  EXPECT_EQ(FindSample(fams, "execflow_execs_total", nginx)->counter.value, 30) << "final total, once more";
  auto records = LoadTakeJournal(path);
  ASSERT_TRUE(records) << records.error().message;
  ASSERT_EQ(records->records.size(), 4u);
  EXPECT_TRUE(records->skipped.empty());
  std::vector<std::tuple<uint64_t, std::string, std::vector<uint64_t>, bool>> got;
  for (const auto& r : records->records) got.emplace_back(r.seq, r.map, r.values, r.taken);
  EXPECT_EQ(got, (decltype(got){{1, "exec_counts", {30}, false}, {1, "exec_counts", {30}, true},
                                {2, "exec_failures", {6}, false}, {2, "exec_failures", {6}, true}}));
  EXPECT_EQ(FindSample(fams, "execflow_bpf_map_entries", {{"map", "exec_counts"}})->gauge.value, 0);
  std::vector<uint8_t> k, v;
  EXPECT_EQ(*f.counts.ReadAll(k, v), 0u) << "the key left the kernel map";
  EXPECT_EQ(*f.failures.ReadAll(k, v), 0u);
  fams = CollectExec(src, &f.tables, &errors);
  EXPECT_EQ(FindSample(fams, "execflow_execs_total", nginx)->counter.value, 30) << "kept for its retention";
  fams = CollectExec(src, &f.tables, &errors);
  EXPECT_EQ(FindSample(fams, "execflow_execs_total", nginx), nullptr) << "then removed";
  EXPECT_EQ(errors, 0);
}

TEST(DecodeExecEvent, CopiesFieldsAndTerminatesStrings) {
  exec_event e{};
  e.time_ns = 5;
  e.pid = 10;
  e.ppid = 9;
  e.uid = 1000;
  e.gid = 1001;
  e.cgroup_id = 77;
  std::memcpy(e.comm, "0123456789abcdef", 16);  // no terminator in the kernel record
  std::strcpy(e.filename, "/usr/bin/env");
  ExecRecord r;
  ASSERT_TRUE(DecodeExecEvent(&e, sizeof(e), 1000, &r));
  EXPECT_EQ(r.time_ns, 1005);
  EXPECT_EQ(r.pid, 10u);
  EXPECT_EQ(r.ppid, 9u);
  EXPECT_EQ(r.uid, 1000u);
  EXPECT_EQ(r.gid, 1001u);
  EXPECT_EQ(r.cgroup_id, 77u);
  EXPECT_EQ(r.comm, "0123456789abcdef");
  EXPECT_EQ(r.filename, "/usr/bin/env");
  EXPECT_TRUE(r.args.empty());
  EXPECT_FALSE(DecodeExecEvent(&e, sizeof(e) - 1, 0, &r));
}

// The command line follows the record: args_len bytes of args_size. The perf buffer
// pads a record to 8 bytes: bytes past args_len are not arguments.
TEST(DecodeExecEvent, TakesTheCommandLineThatFollowsTheRecord) {
  const char args[] = "env\0-i\0x=1\0";  // 11 bytes with their NULs
  std::vector<char> raw(sizeof(exec_event) + 16, 'P');
  exec_event e{};
  e.args_size = 11;
  e.args_len = 11;
  std::memcpy(raw.data(), &e, sizeof(e));
  std::memcpy(raw.data() + sizeof(e), args, 11);
  ExecRecord r;
  ASSERT_TRUE(DecodeExecEvent(raw.data(), raw.size(), 0, &r));
  EXPECT_EQ(r.args, (std::vector<std::string>{"env", "-i", "x=1"}));
  EXPECT_EQ(r.args_bytes, 11u);
  EXPECT_FALSE(r.args_truncated);
  // Cut by the bound: 6 of 11 bytes.
  e.args_len = 6;
  std::memcpy(raw.data(), &e, sizeof(e));
  ASSERT_TRUE(DecodeExecEvent(raw.data(), sizeof(e) + 6, 0, &r));
  EXPECT_EQ(r.args, (std::vector<std::string>{"env", "-i"}));
  EXPECT_TRUE(r.args_truncated);
  // A record shorter than its args_len says is refused, not read past.
  EXPECT_FALSE(DecodeExecEvent(raw.data(), sizeof(e) + 5, 0, &r));
  EXPECT_EQ(r.error, 0);
}

// A failed attempt: its errno; arguments read back and cut, their whole size unknown.
TEST(DecodeExecEvent, AFailedAttemptHasItsErrnoAndMayNotKnowItsWholeSize) {
  const char args[] = "cat\0-n\0";
  std::vector<char> raw(sizeof(exec_event) + 8, 0);
  exec_event e{};
  e.err = 13;  // EACCES
  e.args_size = EXEC_ARGS_SIZE_UNKNOWN;
  e.args_len = 7;
  std::memcpy(raw.data(), &e, sizeof(e));
  std::memcpy(raw.data() + sizeof(e), args, 7);
  ExecRecord r;
  ASSERT_TRUE(DecodeExecEvent(raw.data(), raw.size(), 0, &r));
  EXPECT_EQ(r.error, 13);
  EXPECT_EQ(r.args, (std::vector<std::string>{"cat", "-n"}));
  EXPECT_FALSE(r.args_bytes.has_value());
  EXPECT_TRUE(r.args_truncated);
}

}  // namespace
}  // namespace execflow
