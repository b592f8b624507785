#include "exporter/metrics/histogram.h"

#include <gtest/gtest.h>

#include <cmath>

namespace execflow {
namespace {

TEST(Log2Slot, RoundsUpSoSlotKIsLeTwoToTheK) {
  EXPECT_EQ(log2_slot(0), 0u);
  EXPECT_EQ(log2_slot(1), 0u);
  EXPECT_EQ(log2_slot(2), 1u);
  EXPECT_EQ(log2_slot(3), 2u);
  EXPECT_EQ(log2_slot(4), 2u);
  EXPECT_EQ(log2_slot(5), 3u);
  EXPECT_EQ(log2_slot(64), 6u);
  EXPECT_EQ(log2_slot(65), 7u);
  EXPECT_EQ(log2_slot(65536), 16u);
  EXPECT_EQ(log2_slot(64ull << 20), 26u);
  EXPECT_EQ(log2_slot((64ull << 20) + 1), 27u);
  EXPECT_EQ(log2_slot(~0ull), 63u);
  for (uint64_t v = 2; v < 5000; ++v) {
    const uint32_t k = log2_slot(v);
    EXPECT_LE(v, 1ull << k) << v;
    EXPECT_GT(v, 1ull << (k - 1)) << v;
  }
}

TEST(Log2Histogram, CumulativeBucketsUpTo64MiBThenInf) {
  __u64 slots[LOG2_SLOTS] = {};
  slots[log2_slot(1)] += 2;      // le=1
  slots[log2_slot(64)] += 3;     // le=64
  slots[log2_slot(1000)] += 1;   // le=1024
  auto h = Log2Histogram(slots, 2 * 1 + 3 * 64 + 1000);
  ASSERT_EQ(h.bucket.size(), 28u);  // le=2^0..2^26 and +Inf
  EXPECT_EQ(h.bucket[0].upper_bound, 1);
  EXPECT_EQ(h.bucket[0].cumulative_count, 2u);
  EXPECT_EQ(h.bucket[5].upper_bound, 32);
  EXPECT_EQ(h.bucket[5].cumulative_count, 2u);
  EXPECT_EQ(h.bucket[6].upper_bound, 64);
  EXPECT_EQ(h.bucket[6].cumulative_count, 5u);
  EXPECT_EQ(h.bucket[10].upper_bound, 1024);
  EXPECT_EQ(h.bucket[10].cumulative_count, 6u);
  EXPECT_EQ(h.bucket[26].upper_bound, 64.0 * 1024 * 1024);
  EXPECT_TRUE(std::isinf(h.bucket[27].upper_bound));
  EXPECT_EQ(h.bucket[27].cumulative_count, 6u);
  EXPECT_EQ(h.sample_count, 6u);
  EXPECT_EQ(h.sample_sum, 1194);
}

TEST(Log2Histogram, GrowsPastTheMinimumWhenLargerValuesExist) {
  __u64 slots[LOG2_SLOTS] = {};
  slots[30] = 1;  // a 1 GiB send
  auto h = Log2Histogram(slots, 1ull << 30);
  ASSERT_EQ(h.bucket.size(), 32u);
  EXPECT_EQ(h.bucket[30].upper_bound, std::ldexp(1.0, 30));
  EXPECT_EQ(h.bucket[30].cumulative_count, 1u);
  EXPECT_EQ(h.bucket[29].cumulative_count, 0u);
}

}  // namespace
}  // namespace execflow
