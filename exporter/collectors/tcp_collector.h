#pragma once

#include <linux/types.h>

#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "bpf/tcp.h"
#include "exporter/bpf/handles.h"
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
};
std::vector<prometheus::MetricFamily> TcpFamilies(const SeriesSnapshot& sent, const SeriesSnapshot& received,
                                                  const TcpScrape& scrape);

// Bytes sent and received per TCP flow, a histogram of bytes per send call, and the flow
// lifecycle: a close notice from the kernel makes the consumer thread take
// the flow's final total out of the map (lookup-and-delete) under the same
// mutex as scrapes, so every byte is either in the map or in the FlowTable.
class TcpCollector final : public Collector {
 public:
  // `workloads` names the sockets' cgroups (null: no workload labels resolved).
  // `pin_dir`: where its BPF state is pinned and adopted from ("": nowhere).
  // `clock`: what the series tables measure tcp.closed_flow_retention by (tests pass a fake one).
  static Result<std::unique_ptr<TcpCollector>> Start(
      const TcpConfig& config, Transport transport = Transport::kRingbuf,
      std::shared_ptr<WorkloadResolver> workloads = nullptr, const std::string& pin_dir = "",
      SeriesTable<tcp_flow_key>::Clock clock = std::chrono::steady_clock::now);
  ~TcpCollector() override;

  const std::string& Name() const override { return name_; }
  std::vector<prometheus::MetricFamily> Collect(int* errors) override;
  Result<void> Ready() const override;
  const std::vector<ProgramInfo>& Programs() const override { return programs_; }
  const PinStatus& Pinned() const override { return pin_; }
  void KeepState(std::shared_ptr<StateFile> file, const SavedTables* seed) override;
  Result<void> StartEvents() override;
  const std::vector<std::string>& rejected_hooks() const { return rejected_; }
  // Takes flows as kernels before 5.14 must (lookup, then delete), for tests.
  void UseLookupThenDelete();
  const std::string& send_mode() const { return send_mode_; }
  // The kernel map's entry of this flow, if it holds one (for tests and debugging).
  std::optional<tcp_flow_bytes> KernelFlow(const tcp_flow_key& key) const;
  bool TracksFlow(const tcp_flow_key& key) const { return KernelFlow(key).has_value(); }

 private:
  TcpCollector(const TcpConfig& config, std::shared_ptr<WorkloadResolver> workloads,
               SeriesTable<tcp_flow_key>::Clock clock);
  void OnClose(const void* data, size_t size);
  // Takes a flow's final totals out of the kernel map into the tables; false
  // if it was not there. Called under mu_.
  bool TakeFlowLocked(const tcp_flow_key& key);
  // Takes the closed flows among the n entries just read into keys_ and
  // values_ and packs the others at their front; returns how many are left.
  // Called under mu_.
  size_t TakeClosedLocked(size_t n);
  Result<void> ReadHistogram(tcp_send_hist* out) const;

  const std::string name_ = "tcp";
  SkelPtr<tcp_bpf> skel_;
  std::vector<LinkPtr> links_;
  std::vector<ProgramInfo> programs_;
  std::vector<UniqueFd> prog_fds_;  // adopted programs (their pinned links run them)
  PinStatus pin_;
  std::vector<std::string> rejected_;
  std::string send_mode_;
  std::unique_ptr<BpfMapReader> flows_;
  std::optional<KernelMap> hist_;  // tcp_send_hist, per CPU
  std::shared_ptr<WorkloadResolver> workloads_;
  std::mutex mu_;  // guards the tables, the read buffers and the map's entries' lifetimes
  FlowTable table_;     // bytes sent
  FlowTable received_;  // bytes received
  std::vector<uint8_t> keys_, values_;  // the flow map as last read, kept for their capacity
  std::set<std::string> closed_seen_;  // keys marked closed at the last scrape (guarded by mu_)
  uint64_t flows_closed_ = 0;  // guarded by mu_
  StateKeeper state_;  // guarded by mu_: both tables in bpf.state_file
  EventConsumer::Options consumer_options_;
  std::unique_ptr<EventConsumer> consumer_;
};

}  // namespace execflow
