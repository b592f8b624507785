#pragma once

#include <linux/types.h>

#include <cstdint>

#include <prometheus/client_metric.h>

#include "bpf/lib/log2.h"

namespace execflow {

// Log2 slots from BPF (slot k counts values in (2^(k-1), 2^k]) as a
// Prometheus histogram: cumulative buckets le = 1, 2, 4, ... at least up to
// 2^min_top_slot (so dashboards see a stable set), then +Inf.
prometheus::ClientMetric::Histogram Log2Histogram(const __u64 (&slots)[LOG2_SLOTS],
                                                  uint64_t sum, int min_top_slot = 26);

}  // namespace execflow
