#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <prometheus/collectable.h>

#include "exporter/bpf/handles.h"
#include "exporter/collectors/collector.h"
#include "exporter/collectors/exec_collector.h"
#include "exporter/collectors/tcp_collector.h"
#include "exporter/config/config.h"
#include "exporter/http/server.h"

namespace execflow {

struct BuildInfo {
  std::string version;
  std::string revision;
};
BuildInfo GetBuildInfo();

// Every collector's families, merged, plus the exporter's own: build info,
// time spent collecting and collection errors per collector.
class ExporterMetrics final : public prometheus::Collectable {
 public:
  ExporterMetrics(std::vector<std::shared_ptr<Collector>> collectors, Transport transport);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::vector<std::shared_ptr<Collector>> collectors_;
  Transport transport_;
  std::unique_ptr<std::atomic<uint64_t>[]> errors_;
};

// The loaded collectors, without HTTP: what --config.check verifies.
struct Collectors {
  UniqueFd stats_fd;  // holds kernel.bpf_stats_enabled on while open
  Transport transport = Transport::kRingbuf;  // of exec events and TCP close notices
  std::shared_ptr<ExecCollector> exec;
  std::shared_ptr<TcpCollector> tcp;
  std::vector<std::shared_ptr<Collector>> all;
};
Result<Collectors> StartCollectors(const Config& config);

// Owns collectors and the HTTP server. Destruction stops HTTP first, so no
// scrape runs while the BPF objects are detached.
class App {
 public:
  static Result<std::unique_ptr<App>> Start(const Config& config, const HttpOptions& http);
  ~App();

  int port() const { return http_->port(); }
  const Collectors& collectors() const { return collectors_; }

 private:
  App() = default;
  std::map<std::string, HttpHandler> Routes(const HttpOptions& http) const;

  Collectors collectors_;
  std::shared_ptr<ExporterMetrics> metrics_;
  std::unique_ptr<HttpServer> http_;
};

}  // namespace execflow
