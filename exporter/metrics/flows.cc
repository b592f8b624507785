#include "exporter/metrics/flows.h"

#include <arpa/inet.h>

#include <cstring>
#include <string_view>

namespace execflow {

std::vector<std::string> FlowLabels::Names() const {
  std::vector<std::string> n;
  if (saddr) n.push_back("saddr");
  if (sport) n.push_back("sport");
  if (daddr) n.push_back("daddr");
  if (dport) n.push_back("dport");
  if (port) n.push_back("port");
  if (direction) n.push_back("direction");
  if (k8s_namespace) n.push_back("namespace");
  if (pod) n.push_back("pod");
  if (container) n.push_back("container");
  return n;
}

namespace {

constexpr uint8_t kV4MappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool IsV4Mapped(const uint8_t (&addr)[16]) {
  return std::memcmp(addr, kV4MappedPrefix, sizeof(kV4MappedPrefix)) == 0;
}

// IPv4-mapped IPv6 flows become IPv4 so both spellings of a peer share labels.
tcp_flow_key Normalize(const tcp_flow_key& k) {
  tcp_flow_key n = k;
  if (k.family == EXECFLOW_AF_INET6 && IsV4Mapped(k.saddr) && IsV4Mapped(k.daddr)) {
    std::memset(n.saddr, 0, sizeof(n.saddr));
    std::memset(n.daddr, 0, sizeof(n.daddr));
    std::memcpy(n.saddr, k.saddr + 12, 4);
    std::memcpy(n.daddr, k.daddr + 12, 4);
    n.family = EXECFLOW_AF_INET;
  }
  return n;
}

}  // namespace

std::string FormatAddress(uint16_t family, const uint8_t (&addr)[16]) {
  char buf[INET6_ADDRSTRLEN];
  if (family == EXECFLOW_AF_INET6 && IsV4Mapped(addr)) {
    return inet_ntop(AF_INET, addr + 12, buf, sizeof(buf));
  }
  if (family == EXECFLOW_AF_INET) return inet_ntop(AF_INET, addr, buf, sizeof(buf));
  if (family == EXECFLOW_AF_INET6) return inet_ntop(AF_INET6, addr, buf, sizeof(buf));
  return "unknown";
}

FlowTable::FlowTable(FlowLabels labels, size_t max_series, std::chrono::nanoseconds closed_retention,
                     WorkloadOf workload, Clock clock)
    : SeriesTable([this](const tcp_flow_key& k) { return LabelsOf(k); }, labels.Names(), max_series,
                  closed_retention, std::move(clock)),
      labels_(labels),
      workload_(std::move(workload)) {}

SeriesLabels FlowTable::LabelsOf(const tcp_flow_key& flow) const {
  SeriesLabels s;
  const tcp_flow_key n = Normalize(flow);
  auto& l = s.labels;
  if (labels_.saddr) l.push_back({"saddr", FormatAddress(n.family, n.saddr)});
  if (labels_.sport) l.push_back({"sport", std::to_string(n.sport)});
  if (labels_.daddr) l.push_back({"daddr", FormatAddress(n.family, n.daddr)});
  if (labels_.dport) l.push_back({"dport", std::to_string(n.dport)});
  if (labels_.port) {
    l.push_back({"port", n.direction == TCP_DIR_OUT  ? std::to_string(n.dport)
                         : n.direction == TCP_DIR_IN ? std::to_string(n.sport)
                                                     : ""});
  }
  if (labels_.direction) {
    l.push_back({"direction", n.direction == TCP_DIR_OUT  ? "out"
                              : n.direction == TCP_DIR_IN ? "in"
                                                          : "unknown"});
  }
  if (labels_.k8s_namespace || labels_.pod || labels_.container) {
    auto [w, final] = workload_ ? workload_(flow.cgroup_id) : std::pair<Workload, bool>{{}, true};
    s.final = final;
    if (labels_.k8s_namespace) l.push_back({"namespace", w.k8s_namespace});
    if (labels_.pod) l.push_back({"pod", w.pod});
    if (labels_.container) l.push_back({"container", w.container});
  }
  return s;
}

}  // namespace execflow
