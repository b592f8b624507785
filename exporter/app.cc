#include "exporter/app.h"

#include <unistd.h>

#include <linux/capability.h>

#include <spdlog/spdlog.h>

#include <charconv>
#include <chrono>
#include <limits>
#include <set>

#include "exporter/http/query.h"
#include "exporter/metrics/families.h"
#include "exporter/state/journal.h"
#include "exporter/state/state_file.h"

#ifndef EXECFLOW_VERSION
#define EXECFLOW_VERSION "0.0.0"
#endif
#ifndef EXECFLOW_REVISION
#define EXECFLOW_REVISION "unknown"
#endif

namespace execflow {

BuildInfo GetBuildInfo() { return {EXECFLOW_VERSION, EXECFLOW_REVISION}; }

ExporterMetrics::ExporterMetrics(std::vector<std::shared_ptr<Collector>> collectors,
                                 Transport transport, std::vector<UnavailableHook> unavailable,
                                 std::shared_ptr<WorkloadResolver> workloads)
    : collectors_(std::move(collectors)),
      transport_(transport),
      unavailable_(std::move(unavailable)),
      workloads_(std::move(workloads)),
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
  auto transport = Gauge("execflow_events_transport_info",
                         "How BPF programs send exec events and TCP close notices to the "
                         "exporter: ringbuf or perfbuf (kernels without ring buffers); always 1.");
  AddGauge(transport, {{"transport", std::string(TransportName(transport_))}}, 1);
  all.push_back(std::move(transport));
  all.push_back(Gauge("execflow_workload_unresolved_cgroups",
                      "Cgroup ids seen since the last cgroupfs walk that it did not find: "
                      "their namespace, pod and container labels are empty.",
                      workloads_ ? static_cast<double>(workloads_->unresolved()) : 0));
  all.push_back(std::move(duration));
  all.push_back(std::move(errors));
  // Read now, from this worker thread: what the process really holds.
  const Capabilities caps = CurrentCapabilities();
  auto held = Gauge("execflow_capabilities",
                    "Capabilities the serving process holds (labels: libcap names, comma-separated; "
                    "empty when none); always 1.");
  AddGauge(held, {{"effective", CapabilityNames(caps.effective)}, {"permitted", CapabilityNames(caps.permitted)}},
           1);
  all.push_back(std::move(held));
  auto pinned = Gauge("execflow_bpf_state_pinned",
                      "1 when the collector's BPF maps and links are pinned under bpf.pin_path, so "
                      "counting goes on while no exporter runs.");
  auto adopted = Gauge("execflow_bpf_state_adopted",
                       "1 when this process took over the BPF state an earlier process pinned "
                       "(its counts include what was counted while no exporter ran).");
  for (const auto& c : collectors_) {
    AddGauge(pinned, {{"collector", c->Name()}}, c->Pinned().pinned ? 1 : 0);
    AddGauge(adopted, {{"collector", c->Name()}}, c->Pinned().adopted ? 1 : 0);
  }
  all.push_back(std::move(pinned));
  all.push_back(std::move(adopted));
  if (!unavailable_.empty()) {
    auto missing = Gauge("execflow_hook_unavailable",
                         "1 for each hook the config asks for that could not be attached (see the "
                         "start-up warning and /readyz).");
    for (const auto& u : unavailable_) AddGauge(missing, {{"collector", u.collector}, {"hook", u.hook}}, 1);
    all.push_back(std::move(missing));
  }
  return MergeFamilies(std::move(all));
}

namespace {

// Says how to fix the start-up failures users hit most.
Error WithHint(Error e) {
  const bool privileged = CurrentCapabilities().effective & (CapBit(CAP_SYS_ADMIN) | CapBit(CAP_BPF));
  if ((e.err == EPERM || e.err == EACCES) && !privileged) {
    e.message += " (run as root, or grant CAP_BPF and CAP_PERFMON)";
  } else if (e.err == ENOENT && access("/sys/kernel/tracing/events", F_OK) != 0) {
    e.message += " (classic tracepoints need tracefs: mount -t tracefs tracefs /sys/kernel/tracing)";
  }
  return e;
}

// The optional exec failures group is the one a missing privilege can leave
// out while the exporter still starts; the plan's reasons for it name it.
std::vector<UnavailableHook> FindUnavailableHooks(const Config& config, const Collectors& c) {
  std::vector<UnavailableHook> out;
  const HookGroup& failures = FindHookGroup(ExecHooks(), "exec failures");
  if (c.exec && config.exec.failures_hook == "auto") {
    bool attached = false;
    for (const auto& p : c.exec->Programs()) {
      for (const auto& v : failures.variants) {
        for (const auto& name : v.programs) attached = attached || p.program == name;
      }
    }
    if (!attached) {
      std::string why;
      bool denied = false;
      for (const auto& r : c.exec->rejected_hooks()) {
        const std::string prefix = failures.name + ": ";
        if (r.rfind(prefix, 0) != 0) continue;
        why += (why.empty() ? "" : "; ") + r.substr(prefix.size());
        denied = denied || r.find("Permission denied") != std::string::npos ||
                 r.find("Operation not permitted") != std::string::npos;
      }
      out.push_back({"exec", failures.name,
                     "failed execs are not counted: " + (why.empty() ? "no hook attached" : why) +
                         (denied ? " (classic tracepoints are read from tracefs, which only root can "
                                   "read: run as root or grant CAP_DAC_READ_SEARCH)"
                                 : "") +
                         "; set exec.failures_hook: off to run without them"});
    }
  }
  return out;
}

}  // namespace

Result<CapSet> DropCapabilitiesAfterAttach(const Collectors& collectors) {
  int prog_fd = -1;
  for (const auto& c : collectors.all) {
    if (!c->Programs().empty()) prog_fd = c->Programs().front().fd;
  }
  const CapSet held = CurrentCapabilities().permitted;
  // CAP_BPF where the kernel knows it (5.8+), else CAP_SYS_ADMIN.
  const CapSet candidates[] = {0, CapBit(CAP_BPF), CapBit(CAP_SYS_ADMIN)};
  for (CapSet keep : candidates) {
    if ((keep & held) != keep) continue;
    auto works = BpfReadsWorkWith(keep, prog_fd);
    if (!works) return std::unexpected(works.error());
    if (!*works) continue;
    if (auto ok = RestrictCapabilities(keep); !ok) return std::unexpected(ok.error());
    if (keep == 0) {
      spdlog::info("capabilities: all dropped after attach (this kernel reads BPF maps through "
                   "the fds held without any)");
    } else {
      spdlog::warn("capabilities: kept only {} after attach: this kernel refuses BPF map reads "
                   "without it (Linux before 6.5 with kernel.unprivileged_bpf_disabled set)",
                   CapabilityNames(keep));
    }
    return keep;
  }
  spdlog::warn("capabilities: kept {}: no smaller set reads BPF maps on this kernel",
               CapabilityNames(held));
  return held;
}

namespace {

// Says what became of a collector's pinned state.
void LogPinStatus(const Collector& c) {
  const PinStatus& p = c.Pinned();
  if (!p.replaced.empty()) {
    spdlog::warn("pinned state in {} {}: replacing it", p.dir, p.replaced);
  }
  if (p.adopted) {
    spdlog::info("{}: adopted the BPF state pinned in {} (its programs went on counting while no "
                 "exporter ran)", c.Name(), p.dir);
  } else if (p.pinned) {
    spdlog::info("{}: BPF state pinned in {}", c.Name(), p.dir);
  } else if (!p.error.empty()) {
    spdlog::warn("{}: BPF state not pinned: {}; its counts restart with the exporter", c.Name(),
                 p.error);
  }
}

}  // namespace

Result<std::vector<std::string>> UnpinState(const Config& config) {
  const std::string& path = config.bpf.pin_path;
  if (path.empty()) return Fail("--bpf.unpin: bpf.pin_path is off in the config: set it to the path to clean");
  if (access(path.c_str(), F_OK) != 0 && errno == ENOENT) return std::vector<std::string>{};
  auto root = PinRoot::Open(path);
  if (!root) return std::unexpected(root.error());
  return RemovePinned(path);
}

namespace {

// The folder the collectors pin in ("" for none), locked in c->pin_root. Only
// another exporter on the same state stops start-up: without a bpf filesystem
// (or write access to it) the exporter runs unpinned, loudly.
Result<std::string> OpenPins(const Config& config, bool cgroups_on, Collectors* c) {
  std::string pin_path = config.bpf.pin_path;
  auto root = PinRoot::Open(pin_path);
  if (!root && root.error().err == EWOULDBLOCK) return std::unexpected(root.error());
  if (!root) {
    spdlog::warn("{}: nothing is pinned, counts restart with the exporter", root.error().message);
    return std::string();
  }
  c->pin_root = std::move(*root);
  // A collector turned off leaves no programs counting behind.
  for (const auto& [name, on] : {std::pair{"exec", config.exec.enabled}, std::pair{"tcp", config.tcp.enabled},
                                 std::pair{"cgroups", cgroups_on}}) {
    if (on) continue;
    auto removed = RemovePinned(pin_path + "/" + name);
    if (!removed) return std::unexpected(removed.error());
    if (!removed->empty()) {
      spdlog::info("{}: disabled: removed its pinned state from {}/{}", name, pin_path, name);
    }
  }
  return pin_path;
}

}  // namespace

Result<Collectors> StartCollectors(const Config& config, bool pin) {
  Collectors c;
  // The cgroup paths serve the other collectors' workload labels.
  const bool cgroups_on = (config.exec.enabled || config.tcp.enabled) && config.workloads.hook != "off";
  std::string pin_path;
  if (pin && !config.bpf.pin_path.empty()) {
    auto opened = OpenPins(config, cgroups_on, &c);
    if (!opened) return std::unexpected(opened.error());
    pin_path = std::move(*opened);
  }
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
  auto transport = ChooseTransport(config.events.transport);
  if (!transport) return std::unexpected(transport.error());
  c.transport = *transport;
  spdlog::info("events: transport={}", TransportName(c.transport));
  c.workloads = std::make_shared<WorkloadResolver>(
      ResolverOptions{config.workloads.cgroup_root, config.workloads.kubelet_log_dir});
  spdlog::info("workloads: cgroup v2 hierarchy at {}, kubelet folders in {}",
               c.workloads->cgroup_root().empty() ? "(none)" : c.workloads->cgroup_root(),
               config.workloads.kubelet_log_dir);
  if (cgroups_on) {
    // First: cgroups made while the others load are recorded too.
    auto cgroups = CgroupCollector::Start(config.workloads, c.workloads,
                                          pin_path.empty() ? "" : pin_path + "/cgroups");
    if (!cgroups) return std::unexpected(WithHint(cgroups.error()));
    c.cgroups = std::move(*cgroups);
    if (c.cgroups) c.all.push_back(c.cgroups);
  }
  if (config.exec.enabled) {
    auto exec = ExecCollector::Start(config, c.transport, c.workloads,
                                     pin_path.empty() ? "" : pin_path + "/exec");
    if (!exec) return std::unexpected(WithHint(exec.error()));
    for (const auto& r : (*exec)->rejected_hooks()) spdlog::info("exec: hook not used: {}", r);
    c.exec = std::move(*exec);
    c.all.push_back(c.exec);
  }
  if (config.tcp.enabled) {
    auto tcp = TcpCollector::Start(config.tcp, c.transport, c.workloads,
                                   pin_path.empty() ? "" : pin_path + "/tcp");
    if (!tcp) return std::unexpected(WithHint(tcp.error()));
    for (const auto& r : (*tcp)->rejected_hooks()) spdlog::info("tcp: hook not used: {}", r);
    c.tcp = std::move(*tcp);
    c.all.push_back(c.tcp);
  }
  for (const auto& col : c.all) {
    if (!pin_path.empty()) LogPinStatus(*col);
    for (const auto& p : col->Programs()) {
      spdlog::info("attached {} program={} hook={} attach_type={}", col->Name(), p.program,
                   p.hook, p.attach_type);
    }
  }
  c.unavailable = FindUnavailableHooks(config, c);
  for (const auto& u : c.unavailable) spdlog::warn("{}: {}", u.hook, u.reason);
  return c;
}

namespace {

// Whether every file of the state file's set is this exporter's own (or absent); if
// not, one warning says which and the state file is not used.
bool StateFilesAreOurs(const std::string& path, const Collectors& c) {
  std::vector<std::string> files = {path};
  for (const auto& col : c.all) files.push_back(TakeJournalPath(path, col->Name()));
  for (const std::string& f : files) {
    if (access(f.c_str(), F_OK) == 0 && !IsOwnStateFile(f)) {
      auto why = ReadStateText(f);
      spdlog::warn("state file {}: not used: {} is not a state file or journal this exporter wrote{}; "
                   "totals of closed flows and gone workloads restart lower after a restart",
                   path, f, why ? "" : " (" + why.error().message + ")");
      return false;
    }
  }
  return true;
}

// What the last process saved, if this one took its pinned BPF state over;
// the resolver learns the names it had.
SavedTables LoadSaved(const std::string& path, bool adopted, const Collectors& c) {
  SavedTables saved;
  const bool exists = access(path.c_str(), F_OK) == 0;
  if (!adopted || !exists) {
    if (exists) spdlog::info("state file {}: ignored and replaced: the BPF state it went with was replaced", path);
    return saved;
  }
  auto loaded = LoadStateFile(path);
  if (!loaded) {
    spdlog::warn("state file: {}: starting without the saved totals of closed flows and gone "
                 "workloads, which restart lower",
                 loaded.error().message);
    return saved;
  }
  if (c.workloads) {
    std::map<uint64_t, Workload> named;
    for (const auto& [id, n] : loaded->workloads) named[id] = {n[0], n[1], n[2]};
    c.workloads->Seed(named);
  }
  for (const auto& col : c.all) {
    if (col->Pinned().adopted) continue;
    const std::string prefix = col->Name() + "_";
    auto it = loaded->tables.lower_bound(prefix);
    if (it != loaded->tables.end() && it->first.starts_with(prefix)) {
      spdlog::info("state file {}: {}'s saved totals ignored: its BPF state was {}", path, col->Name(),
                   col->Pinned().pinned ? "replaced" : "not pinned");
    }
  }
  return std::move(loaded->tables);
}

// bpf.state_file: seeds the collectors whose BPF state was taken over with
// what the last process saved, and has every collector keep it from now on.
// Runs before capabilities are dropped: it may create the file's folder. The
// exporter deletes, replaces or appends to only files it can tell it wrote
// (IsOwnStateFile): a bpf.state_file naming someone else's file leaves it
// alone and runs without a state file.
void KeepState(const Config& config, const Collectors& c) {
  const std::string& path = config.bpf.state_file;
  if (path.empty() || !StateFilesAreOurs(path, c)) return;
  bool adopted = false, pinned = false;
  for (const auto& col : c.all) {
    adopted = adopted || col->Pinned().adopted;
    pinned = pinned || col->Pinned().pinned;
  }
  if (const size_t n = RemoveStaleTemporaries(path)) {
    spdlog::info("state file {}: removed {} temporary file(s) a killed process left", path, n);
  }
  if (!pinned) {
    // Nothing outlives this process in the kernel: saved totals would be counted twice.
    if (access(path.c_str(), F_OK) == 0 && unlink(path.c_str()) == 0) {
      spdlog::info("state file {}: removed: no BPF state is pinned, so none is taken over", path);
    }
    for (const auto& col : c.all) unlink(TakeJournalPath(path, col->Name()).c_str());
    return;
  }
  SavedTables saved = LoadSaved(path, adopted, c);
  if (auto ok = MakeStateDir(path); !ok) {
    spdlog::warn("state file {}: {}: not saved, a restart would lose the totals of closed flows", path,
                 ok.error().message);
    return;
  }
  // Saved tables of collectors that took their state over stay in the file until they write theirs (each
  // writes its seeded state at once), so a crash during this start loses none of them.
  SavedTables kept;
  for (const auto& [name, table] : saved) {
    for (const auto& col : c.all) {
      if (col->Pinned().adopted && name.starts_with(col->Name() + "_")) kept.emplace(name, table);
    }
  }
  std::function<SavedWorkloads()> names;
  if (c.workloads) {
    names = [w = c.workloads] {
      SavedWorkloads out;
      for (const auto& [id, n] : w->Named()) out[id] = {n.k8s_namespace, n.pod, n.container};
      return out;
    };
  }
  auto file = std::make_shared<StateFile>(path, std::move(kept), std::move(names));
  for (const auto& col : c.all) col->KeepState(file, col->Pinned().adopted ? &saved : nullptr);
}

}  // namespace

// "0.0.0.0:9741", "[::1]:9742" -> 9741, 9742: the exporter's own ports, whose
// connections are not flows (a client of the exporter cannot add series).
std::vector<uint16_t> ListeningPorts(const std::vector<std::string>& addresses) {
  std::set<uint16_t> ports;
  for (const auto& a : addresses) {
    const auto colon = a.rfind(':');
    int port = 0;
    if (colon != std::string::npos) std::from_chars(a.data() + colon + 1, a.data() + a.size(), port);
    if (port > 0 && port <= 65535) ports.insert(static_cast<uint16_t>(port));
  }
  return {ports.begin(), ports.end()};
}

Result<std::unique_ptr<App>> App::Start(const Config& config, const HttpOptions& http) {
  // Check the addresses before attaching anything (systemd has bound its sockets).
  if (http.systemd_sockets.empty()) {
    if (auto ok = CheckCanListen(http.listen_addresses); !ok) return std::unexpected(ok.error());
  }
  std::unique_ptr<App> app(new App());
  auto collectors = StartCollectors(config, /*pin=*/true);
  if (!collectors) return std::unexpected(collectors.error());
  app->collectors_ = std::move(*collectors);
  KeepState(config, app->collectors_);
  for (const auto& c : app->collectors_.all) c->StartEvents();
  // Before the HTTP server starts, so its threads are born without them.
  if (auto kept = DropCapabilitiesAfterAttach(app->collectors_); !kept) {
    return std::unexpected(kept.error());
  }
  app->metrics_ = std::make_shared<ExporterMetrics>(app->collectors_.all, app->collectors_.transport,
                                                    app->collectors_.unavailable,
                                                    app->collectors_.workloads);
  // The configured ports before the server accepts anything; the ports it
  // really listens on (port 0, systemd's sockets) once it does.
  if (app->collectors_.tcp) app->collectors_.tcp->IgnoreOwnPorts(ListeningPorts(http.listen_addresses));
  auto server = HttpServer::Start(http, app->metrics_, app->Routes(http));
  if (!server) return std::unexpected(server.error());
  app->http_ = std::move(*server);
  if (app->collectors_.tcp) app->collectors_.tcp->IgnoreOwnPorts(ListeningPorts(app->http_->addresses()));
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
    if (!collectors_.unavailable.empty()) {
      std::string body;
      for (const auto& u : collectors_.unavailable) body += u.hook + ": " + u.reason + "\n";
      return HttpResponse{503, "text/plain; charset=utf-8", body};
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
    auto after = QueryUint(query, "after", std::numeric_limits<uint64_t>::max());
    if (!after) {
      std::string body = "{\"error\":";
      AppendJsonString(body, after.error().message);
      return HttpResponse{400, json, body + "}\n"};
    }
    if (*after) return HttpResponse{200, json, log.JsonAfter(**after, limit->value_or(log.capacity())) + "\n"};
    return HttpResponse{200, json, log.Json(limit->value_or(log.capacity())) + "\n"};
  };
  return r;
}

}  // namespace execflow
