#pragma once

#include <linux/types.h>

#include <memory>
#include <mutex>
#include <optional>
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
  uint64_t inflight_swept = 0;       // kprobe mode: send entries of exited threads (missed returns)
  uint64_t recv_inflight_swept = 0;  // ... and receive entries
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
  static Result<std::unique_ptr<TcpCollector>> Start(
      const TcpConfig& config, Transport transport = Transport::kRingbuf,
      std::shared_ptr<WorkloadResolver> workloads = nullptr, const std::string& pin_dir = "");
  ~TcpCollector() override;

  const std::string& Name() const override { return name_; }
  std::vector<prometheus::MetricFamily> Collect(int* errors) const override;
  Result<void> Ready() const override;
  const std::vector<ProgramInfo>& Programs() const override { return programs_; }
  const PinStatus& Pinned() const override { return pin_; }
  void KeepState(std::shared_ptr<StateFile> file, const SavedTables* seed) override;
  const std::vector<std::string>& rejected_hooks() const { return rejected_; }
  const std::string& send_mode() const { return send_mode_; }
  // Whether the kernel map still holds this flow (for tests and debugging).
  bool TracksFlow(const tcp_flow_key& key) const;

 private:
  TcpCollector(const TcpConfig& config, std::shared_ptr<WorkloadResolver> workloads);
  void OnClose(const void* data, size_t size);
  Result<void> ReadHistogram(tcp_send_hist* out) const;
  // kprobe mode: removes the in-flight entries of threads that exited, whose
  // returns the kretprobe missed, and counts them. Called under mu_.
  // Deletes the entries of exited threads from an in-flight map; returns how many.
  uint64_t SweepInflight(bpf_map* args) const;

  const std::string name_ = "tcp";
  SkelPtr<tcp_bpf> skel_;
  std::vector<LinkPtr> links_;
  std::vector<ProgramInfo> programs_;
  std::vector<UniqueFd> prog_fds_;  // adopted programs (their pinned links run them)
  PinStatus pin_;
  std::vector<std::string> rejected_;
  std::string send_mode_;
  std::string receive_mode_;
  std::unique_ptr<BpfMapReader> flows_;
  std::optional<KernelMap> hist_;  // tcp_send_hist, per CPU
  std::shared_ptr<WorkloadResolver> workloads_;
  mutable std::mutex mu_;  // guards the tables, the read buffers and the map's entries' lifetimes
  mutable FlowTable table_;     // bytes sent
  mutable FlowTable received_;  // bytes received
  mutable std::vector<uint8_t> keys_, values_;  // the flow map as last read, kept for their capacity
  uint64_t flows_closed_ = 0;  // guarded by mu_
  mutable uint64_t inflight_swept_ = 0;       // guarded by mu_
  mutable uint64_t recv_inflight_swept_ = 0;  // guarded by mu_
  mutable StateKeeper state_;  // guarded by mu_: both tables in bpf.state_file
  std::unique_ptr<EventConsumer> consumer_;
};

}  // namespace execflow
