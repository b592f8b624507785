#pragma once

#include <linux/types.h>

#include <cstdint>

#include <prometheus/client_metric.h>

#include "bpf/lib/log2.h"

namespace execflow {

// BPF log2 slots (slot k counts values in (2^(k-1), 2^k]) as a Prometheus histogram: buckets
// le = 1, 2, 4, ... up to at least 2^min_top_slot (a stable set for dashboards), then +Inf.
prometheus::ClientMetric::Histogram Log2Histogram(const __u64 (&slots)[LOG2_SLOTS],
                                                  uint64_t sum, int min_top_slot = 26);

}  // namespace execflow
