#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <prometheus/collectable.h>

#include "exporter/common/unique_fd.h"
#include "exporter/collectors/cgroup_collector.h"
#include "exporter/collectors/collector.h"
#include "exporter/collectors/exec_collector.h"
#include "exporter/collectors/tcp_collector.h"
#include "exporter/config/config.h"
#include "exporter/http/server.h"
#include "exporter/privileges/capabilities.h"

namespace execflow {

struct BuildInfo {
  std::string version;
  std::string revision;
};
BuildInfo GetBuildInfo();

// A hook the config asks for (mode auto) that could not be attached, most
// often for want of a privilege: a warning at start-up, a metric, and a
// /readyz reason, never a silent absence.
struct UnavailableHook {
  std::string collector;  // "exec"
  std::string hook;       // "exec failures"
  std::string reason;     // why, and how to fix it
};

// Every collector's families, merged, plus the exporter's own: build info,
// time spent collecting and collection errors per collector, the
// capabilities the process holds, hooks that are unavailable.
class ExporterMetrics final : public prometheus::Collectable {
 public:
  ExporterMetrics(std::vector<std::shared_ptr<Collector>> collectors, Transport transport,
                  std::vector<UnavailableHook> unavailable,
                  std::shared_ptr<WorkloadResolver> workloads);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::vector<std::shared_ptr<Collector>> collectors_;
  Transport transport_;
  std::vector<UnavailableHook> unavailable_;
  std::shared_ptr<WorkloadResolver> workloads_;
  std::unique_ptr<std::atomic<uint64_t>[]> errors_;
};

// The loaded collectors, without HTTP: what --config.check verifies.
struct Collectors {
  UniqueFd stats_fd;  // holds kernel.bpf_stats_enabled on while open
  std::optional<PinRoot> pin_root;  // locks bpf.pin_path while the collectors use it
  Transport transport = Transport::kRingbuf;  // of exec events and TCP close notices
  std::shared_ptr<WorkloadResolver> workloads;  // names cgroups for both collectors
  std::shared_ptr<ExecCollector> exec;
  std::shared_ptr<TcpCollector> tcp;
  std::shared_ptr<CgroupCollector> cgroups;  // null: workloads.hook off or none attached
  std::vector<std::shared_ptr<Collector>> all;
  std::vector<UnavailableHook> unavailable;
};
// With `pin`, the BPF state is pinned under bpf.pin_path and taken over from
// an earlier process (--config.check pins nothing).
Result<Collectors> StartCollectors(const Config& config, bool pin = false);

// --bpf.unpin: removes what is pinned under bpf.pin_path (the programs stop
// counting); refused while an exporter uses it. Returns the pins removed.
Result<std::vector<std::string>> UnpinState(const Config& config);

// After every program is attached: drops every capability, in every thread,
// if BPF reads through the fds held need none on this kernel (Linux 6.5+);
// otherwise keeps only CAP_BPF (or CAP_SYS_ADMIN where the kernel has no
// CAP_BPF), the least that still reads them. Returns what is kept.
Result<CapSet> DropCapabilitiesAfterAttach(const Collectors& collectors);

// The ports of the HTTP server's addresses ("0.0.0.0:9741", "[::1]:9742"),
// each once: connections accepted there are not TCP flows.
std::vector<uint16_t> ListeningPorts(const std::vector<std::string>& addresses);

// Owns collectors and the HTTP server. Destruction stops HTTP first, so no
// scrape runs while the BPF objects are detached.
class App {
 public:
  static Result<std::unique_ptr<App>> Start(const Config& config, const HttpOptions& http);
  ~App();

  int port() const { return http_->port(); }
  const std::vector<std::string>& addresses() const { return http_->addresses(); }
  const Collectors& collectors() const { return collectors_; }

 private:
  App() = default;
  std::map<std::string, HttpHandler> Routes(const HttpOptions& http) const;

  Collectors collectors_;
  std::shared_ptr<ExporterMetrics> metrics_;
  std::unique_ptr<HttpServer> http_;
};

}  // namespace execflow
