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
  // The server's port of the connection (dport of a flow that connected,
  // sport of one that was accepted) and "out" or "in": together they keep one
  // series per service edge, not per client port. A flow opened before the
  // programs were attached has direction "unknown" and an empty port.
  bool port = false;
  bool direction = false;
  bool k8s_namespace = false;
  bool pod = false;
  bool container = false;
  // saddr, sport, daddr, dport, port, direction, namespace, pod, container:
  // those exported, in that order.
  std::vector<std::string> Names() const;
};

// "127.0.0.1", "::1"; IPv4-mapped IPv6 (::ffff:a.b.c.d) as IPv4.
std::string FormatAddress(uint16_t family, const uint8_t (&addr)[16]);

// Bytes per flow as exported counters: a SeriesTable over tcp_flow_key whose
// series are the configured labels of each flow, the workload resolved from
// the socket's cgroup. See SeriesTable for why no series ever decreases.
class FlowTable : public SeriesTable<tcp_flow_key> {
 public:
  FlowTable(FlowLabels labels, size_t max_series, std::chrono::nanoseconds closed_retention,
            WorkloadOf workload = nullptr, Clock clock = std::chrono::steady_clock::now);
  FlowTable(const FlowTable&) = delete;  // the table's label function points here
  FlowTable& operator=(const FlowTable&) = delete;

 private:
  SeriesLabels LabelsOf(const tcp_flow_key& flow) const;

  FlowLabels labels_;
  WorkloadOf workload_;
};

}  // namespace execflow
