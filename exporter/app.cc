#include "exporter/app.h"

#include <unistd.h>

#include <spdlog/spdlog.h>

#include <chrono>

#include "exporter/http/query.h"
#include "exporter/metrics/families.h"

#ifndef EXECFLOW_VERSION
#define EXECFLOW_VERSION "0.0.0"
#endif
#ifndef EXECFLOW_REVISION
#define EXECFLOW_REVISION "unknown"
#endif

namespace execflow {

BuildInfo GetBuildInfo() { return {EXECFLOW_VERSION, EXECFLOW_REVISION}; }

ExporterMetrics::ExporterMetrics(std::vector<std::shared_ptr<Collector>> collectors)
    : collectors_(std::move(collectors)),
      errors_(new std::atomic<uint64_t>[collectors_.size()]()) {}

std::vector<prometheus::MetricFamily> ExporterMetrics::Collect() const {
  std::vector<prometheus::MetricFamily> all;
  auto duration = Gauge("execflow_scrape_duration_seconds",
                        "Time the collector spent reading its BPF maps for this scrape.");
  auto errors = Counter("execflow_scrape_errors_total",
                        "Map reads that failed while collecting; the scrape returned what it could.");
  for (size_t i = 0; i < collectors_.size(); ++i) {
    const auto& c = collectors_[i];
    const auto t0 = std::chrono::steady_clock::now();
    int errs = 0;
    auto families = c->Collect(&errs);
    const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
    errors_[i] += errs;
    std::move(families.begin(), families.end(), std::back_inserter(all));
    AddGauge(duration, {{"collector", c->Name()}}, dt.count());
    AddCounter(errors, {{"collector", c->Name()}}, errors_[i].load());
  }
  auto build = Gauge("execflow_build_info", "Version of the exporter; always 1.");
  const BuildInfo bi = GetBuildInfo();
  AddGauge(build, {{"version", bi.version}, {"revision", bi.revision}}, 1);
  all.push_back(std::move(build));
  all.push_back(std::move(duration));
  all.push_back(std::move(errors));
  return MergeFamilies(std::move(all));
}

namespace {

// Says how to fix the start-up failures users hit most.
Error WithHint(Error e) {
  if (e.err == EPERM || e.err == EACCES) {
    e.message += " (run as root, or grant CAP_BPF and CAP_PERFMON)";
  } else if (e.err == ENOENT) {
    e.message += " (classic tracepoints need tracefs: mount -t tracefs tracefs /sys/kernel/tracing)";
  }
  return e;
}

}  // namespace

Result<Collectors> StartCollectors(const Config& config) {
  Collectors c;
  if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
    return Fail("kernel BTF not readable at /sys/kernel/btf/vmlinux: execflow needs a kernel "
                "built with CONFIG_DEBUG_INFO_BTF=y (and, in a container, that path mounted)",
                errno);
  }
  if (config.bpf.run_time_stats) {
    auto fd = EnableRunTimeStats();
    if (!fd) return std::unexpected(fd.error());
    c.stats_fd = std::move(*fd);
  }
  if (config.exec.enabled) {
    auto exec = ExecCollector::Start(config);
    if (!exec) return std::unexpected(WithHint(exec.error()));
    for (const auto& r : (*exec)->rejected_hooks()) spdlog::info("exec: hook not used: {}", r);
    c.exec = std::move(*exec);
    c.all.push_back(c.exec);
  }
  if (config.tcp.enabled) {
    auto tcp = TcpCollector::Start(config.tcp);
    if (!tcp) return std::unexpected(WithHint(tcp.error()));
    for (const auto& r : (*tcp)->rejected_hooks()) spdlog::info("tcp: hook not used: {}", r);
    c.tcp = std::move(*tcp);
    c.all.push_back(c.tcp);
  }
  for (const auto& col : c.all) {
    for (const auto& p : col->Programs()) {
      spdlog::info("attached {} program={} hook={} attach_type={}", col->Name(), p.program,
                   p.hook, p.attach_type);
    }
  }
  return c;
}

Result<std::unique_ptr<App>> App::Start(const Config& config, const HttpOptions& http) {
  // Check the address before attaching anything.
  if (auto ok = CheckCanListen(http.listen_address); !ok) return std::unexpected(ok.error());
  std::unique_ptr<App> app(new App());
  auto collectors = StartCollectors(config);
  if (!collectors) return std::unexpected(collectors.error());
  app->collectors_ = std::move(*collectors);
  app->metrics_ = std::make_shared<ExporterMetrics>(app->collectors_.all);
  auto server = HttpServer::Start(http, app->metrics_, app->Routes(http));
  if (!server) return std::unexpected(server.error());
  app->http_ = std::move(*server);
  return app;
}

App::~App() {
  http_.reset();  // no scrape may run while collectors detach
}

std::map<std::string, HttpHandler> App::Routes(const HttpOptions& http) const {
  std::map<std::string, HttpHandler> r;
  const std::string path = http.telemetry_path;
  r["/"] = [this, path](std::string_view) {
    const BuildInfo bi = GetBuildInfo();
    std::string body =
        "<!doctype html><html><head><title>execflow exporter</title></head><body>"
        "<h1>execflow exporter</h1><p>version " + bi.version + " (" + bi.revision + ")</p><ul>"
        "<li><a href=\"" + path + "\">" + path + "</a></li>"
        "<li><a href=\"/healthz\">/healthz</a></li><li><a href=\"/readyz\">/readyz</a></li>"
        "<li><a href=\"/api/v1/events\">/api/v1/events</a></li></ul><h2>Attached programs</h2><ul>";
    for (const auto& c : collectors_.all) {
      for (const auto& p : c->Programs()) {
        body += "<li>" + c->Name() + ": " + p.program + " on " + p.attach_type + "/" + p.hook + "</li>";
      }
    }
    body += "</ul></body></html>\n";
    return HttpResponse{200, "text/html; charset=utf-8", body};
  };
  r["/healthz"] = [](std::string_view) { return HttpResponse{200, "text/plain; charset=utf-8", "ok\n"}; };
  r["/readyz"] = [this](std::string_view) {
    for (const auto& c : collectors_.all) {
      if (auto ok = c->Ready(); !ok) {
        return HttpResponse{503, "text/plain; charset=utf-8", ok.error().message + "\n"};
      }
    }
    if (collectors_.all.empty()) {
      return HttpResponse{503, "text/plain; charset=utf-8", "no collector enabled\n"};
    }
    return HttpResponse{200, "text/plain; charset=utf-8", "ready\n"};
  };
  r["/api/v1/events"] = [this](std::string_view query) {
    const char* json = "application/json";
    if (!collectors_.exec) {
      return HttpResponse{404, json, "{\"error\":\"the exec collector is disabled (exec.enabled)\"}\n"};
    }
    const EventLog& log = collectors_.exec->events();
    auto limit = QueryUint(query, "limit", log.capacity());
    if (!limit) {
      std::string body = "{\"error\":";
      AppendJsonString(body, limit.error().message);
      return HttpResponse{400, json, body + "}\n"};
    }
    return HttpResponse{200, json, log.Json(limit->value_or(log.capacity())) + "\n"};
  };
  return r;
}

}  // namespace execflow
