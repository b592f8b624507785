#pragma once

#include <linux/types.h>

#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "bpf/tcp.h"
#include "exporter/bpf/hooks.h"
#include "exporter/bpf/map_reader.h"
#include "exporter/bpf/event_consumer.h"
#include "exporter/collectors/collector.h"
#include "exporter/config/config.h"
#include "exporter/metrics/flows.h"
#include "exporter/state/keeper.h"

struct tcp_bpf;

namespace execflow {

FlowLabels ParseFlowLabels(const std::vector<std::string>& names);

// What one scrape read from the kernel, turned into metric families.
struct TcpScrape {
  size_t live_flows = 0;
  uint64_t flows_closed = 0;
  uint32_t flow_capacity = 0;
  tcp_send_hist hist{};
  tcp_loss loss{};
  size_t folded_flows = 0;
  std::string counter_storage;  // "socket" or "flow_map"
};
std::vector<prometheus::MetricFamily> TcpFamilies(const SeriesSnapshot& sent, const SeriesSnapshot& received,
                                                  const TcpScrape& scrape);

// Bytes sent and received per TCP flow and a histogram of bytes per send call. A close notice
// makes the ring reader take the flow's final totals out of the map under the scrapes' mutex,
// so every byte is either in the map or in a FlowTable.
class TcpCollector final : public Collector {
 public:
  // `workloads` names the sockets' cgroups (null: no workload labels resolved).
  // `pin_dir`: where its BPF state is pinned and taken over from ("": nowhere).
  // `clock`: what the series tables measure tcp.closed_flow_retention by (tests pass a fake one).
  static Result<std::unique_ptr<TcpCollector>> Start(
      const TcpConfig& config, Transport transport = Transport::kRingbuf,
      std::shared_ptr<WorkloadResolver> workloads = nullptr, const std::string& pin_dir = "",
      SeriesTable<tcp_flow_key>::Clock clock = std::chrono::steady_clock::now);
  ~TcpCollector() override { Stop(); }

  std::vector<prometheus::MetricFamily> Collect(int* errors) override;
  const std::string& send_mode() const { return send_mode_; }
  // Where sends and receives count first: "socket" (socket storage) or "flow_map".
  const std::string& counter_storage() const { return counter_storage_; }
  // Connections accepted on the exporter's own ports (in this process's network namespace)
  // are not counted as flows. Replaces the last list.
  void IgnoreOwnPorts(const std::vector<uint16_t>& ports);
  // Takes flows as kernels before 5.14 must (lookup, then delete), for tests.
  void UseLookupThenDelete();
  // The kernel map's entry of this flow, if it holds one (for tests and debugging).
  std::optional<tcp_flow_bytes> KernelFlow(const tcp_flow_key& key) const;
  bool TracksFlow(const tcp_flow_key& key) const { return KernelFlow(key).has_value(); }
  // Socket storage mode, for tests: puts `bytes` in the storage of the socket `sock_fd` as if
  // calls had left them there (what a send racing the close leaves).
  Result<void> PutSocketBytes(int sock_fd, const tcp_sock_bytes& bytes) const;

 private:
  TcpCollector(const TcpConfig& config, std::shared_ptr<WorkloadResolver> workloads,
               SeriesTable<tcp_flow_key>::Clock clock);
  // A close notice: the flow's final totals are taken out of the kernel map.
  void OnRecord(const void* data, size_t size) override;
  // A flow's final totals, taken out of the kernel map, into the tables.
  void Closed(const uint8_t* key, const uint8_t* value);
  // Takes one flow out of the kernel map; false if it was not there. Under mu_.
  bool TakeFlowLocked(const tcp_flow_key& key);
  // Reads the flow map into keys_/values_, taking closed flows; returns the count left. Under mu_.
  Result<size_t> ReadFlowsLocked();
  Result<void> ReadHistogram(tcp_send_hist* out) const;
  // Socket storage mode: runs the iterator that moves every socket's bytes to its flow's entry.
  Result<void> MoveSocketBytes() const;

  tcp_bpf* skel_ = nullptr;
  std::string send_mode_;
  std::string counter_storage_;
  LinkPtr move_iter_;  // socket storage mode: bpf/tcp.bpf.c's tcp_move_iter on tcp_sock_bytes
  std::unique_ptr<BpfMapReader> flows_;
  std::optional<KernelMap> hist_;  // tcp_send_hist, per CPU
  std::shared_ptr<WorkloadResolver> workloads_;
  FlowTable table_;     // bytes sent; guarded by mu_
  FlowTable received_;  // bytes received; guarded by mu_
  std::vector<uint8_t> keys_, values_;  // the flow map as last read, kept for their capacity; guarded by mu_
  std::set<std::string> closed_seen_;  // keys marked closed at the last scrape; guarded by mu_
  uint64_t flows_closed_ = 0;          // guarded by mu_
};

}  // namespace execflow
