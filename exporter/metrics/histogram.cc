#include "exporter/metrics/histogram.h"

#include <cmath>
#include <limits>

namespace execflow {

prometheus::ClientMetric::Histogram Log2Histogram(const __u64 (&slots)[LOG2_SLOTS],
                                                  uint64_t sum, int min_top_slot) {
  int top = min_top_slot;
  for (int k = LOG2_SLOTS - 1; k > top; --k) {
    if (slots[k]) {
      top = k;
      break;
    }
  }
  prometheus::ClientMetric::Histogram h;
  uint64_t cumulative = 0;
  for (int k = 0; k <= top && k < LOG2_SLOTS; ++k) {
    cumulative += slots[k];
    h.bucket.push_back({cumulative, std::ldexp(1.0, k)});
  }
  for (int k = top + 1; k < LOG2_SLOTS; ++k) cumulative += slots[k];
  h.bucket.push_back({cumulative, std::numeric_limits<double>::infinity()});
  h.sample_count = cumulative;
  h.sample_sum = static_cast<double>(sum);
  return h;
}

}  // namespace execflow
