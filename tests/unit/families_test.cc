#include "exporter/metrics/families.h"
#include "exporter/common/shown.h"

#include <gtest/gtest.h>

namespace execflow {
namespace {

TEST(ErrnoName, NamesKnownErrnos) {
  EXPECT_EQ(ErrnoName(2), "ENOENT");
  EXPECT_EQ(ErrnoName(13), "EACCES");
  EXPECT_EQ(ErrnoName(8), "ENOEXEC");
  EXPECT_EQ(ErrnoName(7), "E2BIG");
}

TEST(ErrnoName, NumbersUnknownOnes) { EXPECT_EQ(ErrnoName(4000), "4000"); }

TEST(MergeFamilies, JoinsSameNameInFirstSeenOrder) {
  auto a = Gauge("x", "h");
  AddGauge(a, {{"k", "1"}}, 1);
  auto b = Counter("y", "h");
  AddCounter(b, {}, 2);
  auto c = Gauge("x", "h");
  AddGauge(c, {{"k", "2"}}, 3);
  auto merged = MergeFamilies({a, b, c});
  ASSERT_EQ(merged.size(), 2u);
  EXPECT_EQ(merged[0].name, "x");
  ASSERT_EQ(merged[0].metric.size(), 2u);
  EXPECT_EQ(merged[0].metric[1].label[0].value, "2");
  EXPECT_EQ(merged[0].metric[1].gauge.value, 3);
  EXPECT_EQ(merged[1].name, "y");
}

TEST(MapFamilies, OneSamplePerMapInEachFamily) {
  std::vector<prometheus::MetricFamily> out;
  AppendMapFamilies({{"a", 3, 10, 1}, {"b", 0, 5, 0}}, &out);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].name, "execflow_bpf_map_entries");
  EXPECT_EQ(out[0].metric[0].gauge.value, 3);
  EXPECT_EQ(out[1].name, "execflow_bpf_map_capacity");
  EXPECT_EQ(out[1].metric[1].gauge.value, 5);
  EXPECT_EQ(out[2].name, "execflow_bpf_map_update_failures_total");
  EXPECT_EQ(out[2].type, prometheus::MetricType::Counter);
  EXPECT_EQ(out[2].metric[0].counter.value, 1);
}

}  // namespace
}  // namespace execflow
