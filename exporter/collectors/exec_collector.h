#pragma once

#include <linux/types.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <spdlog/logger.h>

#include "bpf/exec.h"
#include "exporter/bpf/hooks.h"
#include "exporter/bpf/map_reader.h"
#include "exporter/bpf/event_consumer.h"
#include "exporter/collectors/collector.h"
#include "exporter/config/config.h"
#include "exporter/events/event_log.h"
#include "exporter/events/redact.h"
#include "exporter/metrics/families.h"
#include "exporter/metrics/series_table.h"
#include "exporter/state/keeper.h"
#include "exporter/workloads/resolver.h"

struct exec_bpf;

namespace execflow {

// Which exec labels are exported; keys that agree on them share a series.
struct ExecLabels {
  bool uid = true;
  bool k8s_namespace = false;
  bool pod = false;
  bool container = false;
};
ExecLabels ParseExecLabels(const std::vector<std::string>& names);

// Execs per (cgroup, uid) and failures per (cgroup, uid, errno) as series of the configured
// labels, the workload named from the cgroup (see SeriesTable: none decreases, totals exact).
class ExecTables {
 public:
  // Series of gone workloads are kept `retention` after their last count.
  ExecTables(ExecLabels labels, WorkloadOf workload, std::chrono::nanoseconds retention,
             SeriesTable<exec_key>::Clock clock = std::chrono::steady_clock::now);
  ExecTables(const ExecTables&) = delete;  // the tables' label functions point here
  ExecTables& operator=(const ExecTables&) = delete;
  SeriesTable<exec_key> execs;
  SeriesTable<exec_failure_key> failures;

 private:
  std::vector<prometheus::ClientMetric::Label> Labels(uint64_t cgroup_id, uint32_t uid,
                                                      const std::string* err, bool* final) const;
  ExecLabels labels_;
  WorkloadOf workload_;
};

// The exec metrics' sources (fakes in unit tests); `failures`: null if failure counting is off.
// Keys of a `gone` cgroup are taken (totals stay in the tables): the maps hold live workloads only.
struct ExecSources {
  const MapReader* counts = nullptr;
  const MapReader* failures = nullptr;
  const exec_loss* loss = nullptr;  // the BPF object's mmaped .bss
  uint64_t events_delivered = 0;
  // Whether the cgroup of an id read from a map at read_at is gone; null: nothing is.
  std::function<bool(uint64_t cgroup_id, std::chrono::steady_clock::time_point read_at)> gone;
  TakeFn take;                                   // how keys are taken (null: MapReader::Take)
};
// What one scrape read: the tables' series and the maps' and ring buffer's counters.
struct ExecScrape {
  SeriesSnapshot execs;
  std::optional<SeriesSnapshot> failures;  // failure counting on
  std::vector<MapStat> maps;
  uint64_t events_delivered = 0;
  uint64_t events_dropped = 0;
};
// ScrapeExec runs under the collector's lock; ExecFamilies after it is released.
ExecScrape ScrapeExec(const ExecSources& src, ExecTables* tables, int* errors);
std::vector<prometheus::MetricFamily> ExecFamilies(const ExecScrape& scrape);
// Both in one call.
std::vector<prometheus::MetricFamily> CollectExec(const ExecSources& src, ExecTables* tables,
                                                  int* errors);

// Decodes one ring buffer record (false: too short); `to_wall_ns` turns its time into wall time.
bool DecodeExecEvent(const void* data, size_t size, int64_t to_wall_ns,
                     ExecRecord* out);

// Successful execs per UID, failed execs per (UID, errno) and the exec event stream.
class ExecCollector final : public Collector {
 public:
  // `workloads` names the cgroups (null: no workload labels resolved).
  // `pin_dir`: where its BPF state is pinned and taken over from ("": nowhere).
  static Result<std::unique_ptr<ExecCollector>> Start(
      const Config& config, Transport transport = Transport::kRingbuf,
      std::shared_ptr<WorkloadResolver> workloads = nullptr, const std::string& pin_dir = "");
  ~ExecCollector() override { Stop(); }

  std::vector<prometheus::MetricFamily> Collect(int* errors) override;
  const EventLog& events() const { return log_; }
  uint64_t events_delivered() const { return delivered_.load(std::memory_order_relaxed); }

 private:
  ExecCollector(const Config& config, std::shared_ptr<WorkloadResolver> workloads);
  // Opens events.output (stdout or a file); at start-up, so its errors stop it.
  Result<void> OpenOutput(const EventsConfig& events);
  void OnRecord(const void* data, size_t size) override;

  exec_bpf* skel_ = nullptr;
  std::unique_ptr<BpfMapReader> counts_;
  std::unique_ptr<BpfMapReader> failures_;
  std::shared_ptr<WorkloadResolver> workloads_;
  ExecTables tables_;  // guarded by mu_
  EventLog log_;
  ArgRedactor redactor_;
  std::shared_ptr<spdlog::logger> sink_;
  std::atomic<uint64_t> delivered_{0};
  // The reader thread's: the kernel's dropped-event count at the last record, and the
  // last record's seq.
  uint64_t dropped_seen_ = 0;
  uint64_t seq_ = 0;
  int64_t to_wall_ns_ = 0;  // the clock the programs stamp events with, to wall time
};

}  // namespace execflow
