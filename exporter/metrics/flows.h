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

// Which flow labels are exported; workload ones are off unless asked (the config asks by default).
struct FlowLabels {
  bool saddr = true;
  bool sport = true;
  bool daddr = true;
  bool dport = true;
  // The server's port (dport if this side connected, sport if it accepted) and "out" or "in":
  // one series per service edge, not per client port. A flow opened before the programs were
  // attached has direction "unknown" and an empty port.
  bool port = false;
  bool direction = false;
  bool k8s_namespace = false;
  bool pod = false;
  bool container = false;
  // Those exported of: saddr, sport, daddr, dport, port, direction, namespace, pod, container.
  std::vector<std::string> Names() const;
};

// "127.0.0.1", "::1"; IPv4-mapped IPv6 (::ffff:a.b.c.d) as IPv4.
std::string FormatAddress(uint16_t family, const uint8_t (&addr)[16]);

// Bytes per flow: a SeriesTable over tcp_flow_key by the configured labels, the workload named
// from the socket's cgroup (see SeriesTable for why no series decreases).
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
