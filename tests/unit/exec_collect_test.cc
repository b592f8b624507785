#include <gtest/gtest.h>

#include "exporter/collectors/exec_collector.h"
#include "tests/unit/fake_map_reader.h"

namespace execflow {
namespace {

struct ExecFakes {
  FakeMapReader<__u32, __u64> counts{"exec_counts", 100};
  FakeMapReader<exec_failure_key, __u64> failures{"exec_failures", 50};
  exec_loss loss{};
  ExecSources Sources(bool with_failures = true) {
    return {&counts, with_failures ? &failures : nullptr, &loss, 0};
  }
};

TEST(CollectExec, CountsPerUidAndFailuresPerErrnoName) {
  ExecFakes f;
  f.counts.Put(0, 12);
  f.counts.Put(1000, 200);
  f.failures.Put({1000, 2}, 50);
  f.failures.Put({0, 13}, 3);
  int errors = 0;
  auto fams = CollectExec(f.Sources(), &errors);
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
  f.counts.Put(1, 5);
  f.loss.uid_overflow = 7;
  f.loss.failure_overflow = 2;
  f.loss.events_dropped = 9;
  ExecSources src = f.Sources();
  src.events_delivered = 4;
  int errors = 0;
  auto fams = CollectExec(src, &errors);
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
  auto fams = CollectExec(f.Sources(false), &errors);
  for (const auto& fam : fams) EXPECT_NE(fam.name, "execflow_exec_failures_total");
  EXPECT_EQ(FindSample(fams, "execflow_bpf_map_entries", {{"map", "exec_failures"}}), nullptr);
}

TEST(CollectExec, ReadErrorIsCountedAndTheRestIsReturned) {
  ExecFakes f;
  f.counts.FailWith(EPERM);
  f.failures.Put({5, 2}, 1);
  int errors = 0;
  auto fams = CollectExec(f.Sources(), &errors);
  EXPECT_EQ(errors, 1);
  EXPECT_EQ(FindSample(fams, "execflow_exec_failures_total", {{"uid", "5"}, {"errno", "ENOENT"}})
                ->counter.value,
            1);
}

TEST(DecodeExecEvent, CopiesFieldsAndTerminatesStrings) {
  exec_event e{};
  e.boot_ns = 5;
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
  EXPECT_FALSE(DecodeExecEvent(&e, sizeof(e) - 1, 0, &r));
}

}  // namespace
}  // namespace execflow
