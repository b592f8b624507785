#pragma once

#include <linux/types.h>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include <prometheus/client_metric.h>

#include "bpf/tcp.h"

namespace execflow {

// Which flow labels are exported; flows that agree on them share a series.
struct FlowLabels {
  bool saddr = true;
  bool sport = true;
  bool daddr = true;
  bool dport = true;
  std::vector<std::string> Names() const;  // in saddr, sport, daddr, dport order
};

// "127.0.0.1", "::1"; IPv4-mapped IPv6 (::ffff:a.b.c.d) as IPv4.
std::string FormatAddress(uint16_t family, const uint8_t (&addr)[16]);

struct FlowKeyHash {
  size_t operator()(const tcp_flow_key& k) const;
};
struct FlowKeyEq {
  bool operator()(const tcp_flow_key& a, const tcp_flow_key& b) const;
};

// Turns per-flow byte totals from the kernel into exported counters.
//
// Every exported series is an accumulator fed only with per-flow deltas
// (bytes now minus bytes last seen), so no series can decrease, whatever
// aggregation, folding into "other" or flow closes do; and the sum over all
// series is exactly the bytes counted in the kernel. Not thread-safe: the
// collector serializes Scrape() and Closed() with one mutex.
class FlowTable {
 public:
  FlowTable(FlowLabels labels, size_t max_series, uint32_t closed_retention_scrapes);

  struct LiveFlow {
    tcp_flow_key key;
    uint64_t bytes;
  };
  // One scrape: every live kernel flow, and the bytes the kernel could not
  // attribute to a flow (map full) so far.
  void Scrape(const std::vector<LiveFlow>& live, uint64_t overflow_bytes);
  // A flow's final total, taken out of the kernel map when its socket closed.
  void Closed(const tcp_flow_key& key, uint64_t final_bytes);

  // The series to export after the last Scrape(), as counter samples with
  // labels in FlowLabels::Names() order (rendered once, when a series starts).
  std::vector<prometheus::ClientMetric> Export() const;
  // Live flows whose labels had no room under max_series (folded into "other").
  size_t folded_flows() const { return folded_flows_; }

 private:
  struct SeriesState {
    prometheus::ClientMetric sample;  // labels; the counter holds the bytes
    bool live = false;         // had a live flow at the last scrape
    bool touched = false;      // got bytes or a flow close since the last scrape
    uint32_t idle_scrapes = 0; // scrapes since it last had a live flow or was touched
  };

  tcp_flow_key SeriesKeyOf(const tcp_flow_key& flow) const;
  // The flow's series, admitted if there is room; null means "other".
  SeriesState* SeriesOf(const tcp_flow_key& flow);
  // Adds delta to `series`, or to "other" when it is null. `closed`: the flow ended.
  void Add(SeriesState* series, uint64_t delta, bool live, bool closed);

  FlowLabels labels_;
  size_t max_series_;
  uint32_t retention_;
  struct Seen {
    uint64_t bytes = 0;
    uint64_t scrape = 0;             // the scrape that last saw the flow live
    SeriesState* series = nullptr;   // null: folded into "other" (admission retried)
  };
  std::unordered_map<tcp_flow_key, Seen, FlowKeyHash, FlowKeyEq> last_seen_;
  uint64_t scrapes_ = 0;
  std::unordered_map<tcp_flow_key, SeriesState, FlowKeyHash, FlowKeyEq> series_;
  double other_bytes_ = 0;
  uint64_t overflow_seen_ = 0;
  size_t folded_flows_ = 0;
};

}  // namespace execflow
