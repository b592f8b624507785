#pragma once

#include <linux/types.h>

#include <cstdint>
#include <string>
#include <functional>
#include <vector>

#include <prometheus/client_metric.h>

#include "bpf/tcp.h"
#include "exporter/metrics/series_table.h"
#include "exporter/workloads/resolver.h"

namespace execflow {

// Which flow labels are exported; flows that agree on them share a series.
// The workload labels are off unless asked for (the config asks by default).
struct FlowLabels {
  bool saddr = true;
  bool sport = true;
  bool daddr = true;
  bool dport = true;
  bool k8s_namespace = false;
  bool pod = false;
  bool container = false;
  // saddr, sport, daddr, dport, namespace, pod, container: those exported, in that order.
  std::vector<std::string> Names() const;
};

// "127.0.0.1", "::1"; IPv4-mapped IPv6 (::ffff:a.b.c.d) as IPv4.
std::string FormatAddress(uint16_t family, const uint8_t (&addr)[16]);

// Bytes per flow as exported counters: a SeriesTable over tcp_flow_key whose
// series are the configured labels of each flow, the workload resolved from
// the socket's cgroup. See SeriesTable for why no series ever decreases.
class FlowTable {
 public:
  FlowTable(FlowLabels labels, size_t max_series, std::chrono::nanoseconds closed_retention,
            WorkloadOf workload = nullptr,
            SeriesTable<tcp_flow_key>::Clock clock = std::chrono::steady_clock::now);
  FlowTable(const FlowTable&) = delete;  // the table's label function points here
  FlowTable& operator=(const FlowTable&) = delete;

  using LiveFlow = SeriesTable<tcp_flow_key>::Live;  // {key, bytes}
  // One scrape: every live kernel flow, and the bytes the kernel could not
  // attribute to a flow (map full) so far.
  void Scrape(const std::vector<LiveFlow>& live, uint64_t overflow_bytes) {
    table_.Scrape(live, overflow_bytes);
  }
  // The same from the flow map's packed keys and values (MapReader::ReadAll):
  // flow i's bytes are the u64 at values + i * value_stride.
  void Scrape(const uint8_t* keys, const uint8_t* values, size_t value_stride, size_t n,
              uint64_t overflow_bytes) {
    table_.Scrape(keys, values, value_stride, n, overflow_bytes);
  }
  // A flow's final total, taken out of the kernel map when its socket closed.
  void Closed(const tcp_flow_key& key, uint64_t final_bytes) { table_.Closed(key, final_bytes); }

  // The series to export after the last Scrape(), with labels in
  // FlowLabels::Names() order: a snapshot to Build() outside the lock, or
  // the samples themselves.
  SeriesSnapshot Snapshot() const { return table_.Snapshot(); }
  std::vector<prometheus::ClientMetric> Export() const { return table_.Export(); }
  // Live flows whose labels had no room under max_series (folded into "other").
  size_t folded_flows() const { return table_.folded(); }
  // What a restarted exporter seeds itself with (see SeriesTableState).
  SeriesTableState ExportState() const { return table_.ExportState(); }
  bool ImportState(const SeriesTableState& state, size_t max_keys = SIZE_MAX) {
    return table_.ImportState(state, max_keys);
  }
  uint64_t changes() const { return table_.changes(); }

 private:
  SeriesLabels LabelsOf(const tcp_flow_key& flow) const;

  FlowLabels labels_;
  WorkloadOf workload_;
  SeriesTable<tcp_flow_key> table_;
};

}  // namespace execflow
