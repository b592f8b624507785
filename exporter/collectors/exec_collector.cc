#include "exporter/collectors/exec_collector.h"

#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "exec.skel.h"
#include "exporter/bpf/loader.h"
#include "exporter/common/shown.h"
#include "exporter/events/event_file.h"
#include "exporter/metrics/families.h"

namespace execflow {

static_assert(sizeof(exec_event) == 320, "exec_event layout changed: update exec.h users");
// bpf/exec.bpf.c builds an event in a per-CPU array entry: the kernel allows 32 KiB.
static_assert(sizeof(exec_event) + EXEC_ARGS_MAX <= 32768);
static_assert(sizeof(exec_key) == 16);
static_assert(sizeof(exec_failure_key) == 16);
static_assert(sizeof(exec_loss) == 24);

namespace {

// How long a gone workload's series is still exported with its final totals.
constexpr std::chrono::minutes kGoneWorkloadRetention{5};

// What to add to a time of `clock` to get the wall clock's.
int64_t ToWallNs(clockid_t clock) {
  timespec real, t;
  clock_gettime(CLOCK_REALTIME, &real);
  clock_gettime(clock, &t);
  return (real.tv_sec - t.tv_sec) * 1000000000LL + (real.tv_nsec - t.tv_nsec);
}

std::string CString(const char* s, size_t max) { return std::string(s, strnlen(s, max)); }

}  // namespace

ExecLabels ParseExecLabels(const std::vector<std::string>& names) {
  auto has = [&](const char* n) { return std::find(names.begin(), names.end(), n) != names.end(); };
  return {has("uid"), has("namespace"), has("pod"), has("container")};
}

namespace {

std::vector<std::string> LabelNames(const ExecLabels& l, bool with_errno) {
  std::vector<std::string> n;
  if (l.uid) n.push_back("uid");
  if (with_errno) n.push_back("errno");
  if (l.k8s_namespace) n.push_back("namespace");
  if (l.pod) n.push_back("pod");
  if (l.container) n.push_back("container");
  return n;
}

// Reads one map into its table; keys of a gone cgroup are taken out with their final totals.
template <typename K>
Result<size_t> ScrapeMap(const MapReader& map, SeriesTable<K>* table, uint64_t overflow, const ExecSources& src) {
  std::vector<uint8_t> keys, values;
  // The map is read whole before the first call: ids are judged by a walk begun after that.
  std::optional<std::chrono::steady_clock::time_point> read_at;
  auto gone = [&](const uint8_t* key, const uint8_t*) {
    if (!read_at) read_at = std::chrono::steady_clock::now();
    K k;
    std::memcpy(&k, key, sizeof(k));
    return src.gone && src.gone(k.cgroup_id, *read_at);
  };
  auto final = [&](const uint8_t* key, const uint8_t* value) {
    K k;
    __u64 v;
    std::memcpy(&k, key, sizeof(k));
    std::memcpy(&v, value, sizeof(v));
    table->Closed(k, v);
  };
  auto n = ReadLive(map, keys, values, gone, final, src.take);
  if (!n) return n;
  table->Scrape(keys.data(), values.data(), sizeof(__u64), *n, overflow);
  return n;
}

}  // namespace

ExecTables::ExecTables(ExecLabels labels, WorkloadOf workload, std::chrono::nanoseconds retention,
                       SeriesTable<exec_key>::Clock clock)
    : execs(
          [this](const exec_key& k) {
            SeriesLabels s;
            s.labels = Labels(k.cgroup_id, k.uid, nullptr, &s.final);
            return s;
          },
          LabelNames(labels, false), SIZE_MAX, retention, clock),
      failures(
          [this](const exec_failure_key& k) {
            SeriesLabels s;
            const std::string err = ErrnoName(static_cast<int>(k.err));
            s.labels = Labels(k.cgroup_id, k.uid, &err, &s.final);
            return s;
          },
          LabelNames(labels, true), SIZE_MAX, retention, clock),
      labels_(labels),
      workload_(std::move(workload)) {}

std::vector<prometheus::ClientMetric::Label> ExecTables::Labels(uint64_t cgroup_id, uint32_t uid,
                                                                const std::string* err,
                                                                bool* final) const {
  std::vector<prometheus::ClientMetric::Label> l;
  if (labels_.uid) l.push_back({"uid", std::to_string(uid)});
  if (err) l.push_back({"errno", *err});
  if (labels_.k8s_namespace || labels_.pod || labels_.container) {
    auto [w, done] = workload_ ? workload_(cgroup_id) : std::pair<Workload, bool>{{}, true};
    *final = done;
    if (labels_.k8s_namespace) l.push_back({"namespace", w.k8s_namespace});
    if (labels_.pod) l.push_back({"pod", w.pod});
    if (labels_.container) l.push_back({"container", w.container});
  }
  return l;
}

ExecScrape ScrapeExec(const ExecSources& src, ExecTables* tables, int* errors) {
  ExecScrape out;
  const uint64_t uid_overflow = LoadCounter(src.loss->uid_overflow);
  auto n = ScrapeMap(*src.counts, &tables->execs, uid_overflow, src);
  if (!n) {
    ++*errors;
    spdlog::debug("collect exec: {}", n.error().message);
  }
  out.execs = tables->execs.Snapshot();
  out.maps.push_back({src.counts->Name(), n ? double(*n) : 0, double(src.counts->Capacity()),
                      double(uid_overflow)});
  if (src.failures) {
    const uint64_t overflow = LoadCounter(src.loss->failure_overflow);
    auto m = ScrapeMap(*src.failures, &tables->failures, overflow, src);
    if (!m) {
      ++*errors;
      spdlog::debug("collect exec failures: {}", m.error().message);
    }
    out.failures = tables->failures.Snapshot();
    out.maps.push_back({src.failures->Name(), m ? double(*m) : 0, double(src.failures->Capacity()),
                        double(overflow)});
  }
  out.events_delivered = src.events_delivered;
  out.events_dropped = LoadCounter(src.loss->events_dropped);
  return out;
}

std::vector<prometheus::MetricFamily> ExecFamilies(const ExecScrape& s) {
  std::vector<prometheus::MetricFamily> out;
  auto execs = Counter("execflow_execs_total",
                       "Successful execs per real UID and workload; labels \"other\" count execs "
                       "that found the kernel map full.");
  execs.metric = s.execs.Build();
  out.push_back(std::move(execs));
  if (s.failures) {
    auto fails = Counter("execflow_exec_failures_total",
                         "Failed execve/execveat calls per real UID, errno and workload; labels "
                         "\"other\" count failures that found the kernel map full.");
    fails.metric = s.failures->Build();
    out.push_back(std::move(fails));
  }

  out.push_back(Counter("execflow_exec_events_total",
                        "Exec events delivered to user space through the ring buffer.",
                        static_cast<double>(s.events_delivered)));
  out.push_back(Counter("execflow_exec_events_dropped_total",
                        "Exec events lost because the ring buffer was full; the exec is "
                        "still counted in execflow_execs_total.",
                        static_cast<double>(s.events_dropped)));

  AppendMapFamilies(s.maps, &out);
  return out;
}

std::vector<prometheus::MetricFamily> CollectExec(const ExecSources& src, ExecTables* tables,
                                                  int* errors) {
  return ExecFamilies(ScrapeExec(src, tables, errors));
}

bool DecodeExecEvent(const void* data, size_t size, int64_t to_wall_ns, ExecRecord* out) {
  if (size < sizeof(exec_event)) return false;
  exec_event e;
  std::memcpy(&e, data, sizeof(e));
  out->time_ns = static_cast<int64_t>(e.time_ns) + to_wall_ns;
  out->pid = e.pid;
  out->ppid = e.ppid;
  out->uid = e.uid;
  out->gid = e.gid;
  out->cgroup_id = e.cgroup_id;
  out->comm = CString(e.comm, sizeof(e.comm));
  out->filename = CString(e.filename, sizeof(e.filename));
  // The perf buffer pads a record to 8 bytes: what follows args_len is not the command line.
  if (e.args_len > size - sizeof(e)) return false;
  SplitArgs({static_cast<const char*>(data) + sizeof(e), e.args_len},
            e.args_size == EXEC_ARGS_SIZE_UNKNOWN ? std::nullopt : std::optional<uint32_t>(e.args_size), out);
  out->error = static_cast<int>(e.err);
  return true;
}

ExecCollector::ExecCollector(const Config& config, std::shared_ptr<WorkloadResolver> workloads)
    : Collector("exec"),
      workloads_(std::move(workloads)),
      tables_(ParseExecLabels(config.exec.labels), WorkloadsOf(workloads_.get()),
              kGoneWorkloadRetention),
      log_(config.events.keep_last),
      redactor_(config.events.redact_flags, config.events.redact_url_passwords) {}

Result<std::unique_ptr<ExecCollector>> ExecCollector::Start(const Config& config, Transport transport,
                                                            std::shared_ptr<WorkloadResolver> workloads,
                                                            const std::string& pin_dir) {
  std::unique_ptr<ExecCollector> c(new ExecCollector(config, std::move(workloads)));
  const ExecConfig& ec = config.exec;
  const EventsConfig& ev = config.events;
  const uint32_t page = static_cast<uint32_t>(sysconf(_SC_PAGESIZE));
  const uint32_t buffer_bytes = ev.enabled ? std::max(ev.ring_buffer_bytes, page) : page;

  std::function<Result<void>(exec_bpf*)> configure = [&](exec_bpf* s) -> Result<void> {
    s->rodata->targ_events = ev.enabled;
    s->rodata->targ_args_max = ev.args_max_bytes;
    s->rodata->targ_failure_events = ev.failed_execs;
    s->rodata->targ_perfbuf = transport == Transport::kPerfbuf;
    int err = bpf_map__set_max_entries(s->maps.exec_counts, ec.max_uids);
    if (!err) err = bpf_map__set_max_entries(s->maps.exec_failures, ec.max_failure_keys);
    if (err) return FailErrno("size exec maps", err);
    return ConfigureTransport(transport, s->maps.exec_events, buffer_bytes);
  };

  auto attached = SelectAndAttach<exec_bpf>(
      ExecHooks(), {{"exec.hook", ec.hook}, {"exec.failures_hook", ec.failures_hook}}, configure,
      pin_dir);
  if (!attached) return std::unexpected(attached.error());
  const bool failures_on = !attached->plan.ModeOf("exec failures").empty();
  exec_bpf* s = c->skel_ = c->Keep(std::move(*attached));
  auto counts = OpenMapReader<exec_key, __u64>(s->maps.exec_counts);
  if (!counts) return std::unexpected(counts.error());
  c->counts_ = std::move(*counts);
  if (failures_on) {
    auto failures = OpenMapReader<exec_failure_key, __u64>(s->maps.exec_failures);
    if (!failures) return std::unexpected(failures.error());
    c->failures_ = std::move(*failures);
  }
  c->state_.Keep<exec_key>("exec_execs", &c->tables_.execs, c->counts_.get(), 0);
  c->state_.Keep<exec_failure_key>("exec_failures", &c->tables_.failures, c->failures_.get(), 0);
  c->ReadyWhenReadable(&c->counts_->map());
  if (ev.enabled) {
    if (auto ok = c->OpenOutput(ev); !ok) return std::unexpected(ok.error());
    // The clock each transport's programs stamp events with (bpf/exec.bpf.c).
    c->to_wall_ns_ = ToWallNs(transport == Transport::kPerfbuf ? CLOCK_MONOTONIC : CLOCK_BOOTTIME);
    c->dropped_seen_ = __atomic_load_n(&s->bss->loss.events_dropped, __ATOMIC_RELAXED);
    auto reads = c->ReadsEvents({transport, bpf_map__fd(s->maps.exec_events),
                                 bpf_map__fd(s->maps.exec_events_perf), buffer_bytes, "exec events"});
    if (!reads) return std::unexpected(reads.error());
  }
  return c;
}

Result<void> ExecCollector::OpenOutput(const EventsConfig& ev) {
  try {
    if (ev.output == "stdout") {
      sink_ = std::make_shared<spdlog::logger>(
          "exec_events", std::make_shared<spdlog::sinks::stdout_sink_mt>());
    } else if (ev.output == "file") {
      auto file = OpenEventFile(ev.file_path, ev.file_max_bytes, ev.file_max_files);
      if (!file) return std::unexpected(file.error());
      sink_ = std::make_shared<spdlog::logger>("exec_events", *file);
    }
  } catch (const spdlog::spdlog_ex& e) {
    return Fail("open events output " + ev.file_path + ": " + e.what());
  }
  if (sink_) {
    sink_->set_pattern("%v");
    sink_->flush_on(spdlog::level::info);
  }
  return {};
}

void ExecCollector::OnRecord(const void* data, size_t size) {
  ExecRecord r;
  if (!DecodeExecEvent(data, size, to_wall_ns_, &r)) return;
  redactor_.Redact(&r.args);
  if (workloads_) {
    // The exec'ing process, or its parent, usually still runs in that cgroup.
    Workload w = workloads_->Resolve(r.cgroup_id, nullptr, {r.pid, r.ppid});
    r.k8s_namespace = std::move(w.k8s_namespace);
    r.pod = std::move(w.pod);
    r.container = std::move(w.container);
  }
  // Events the kernel dropped since the last record (a full buffer) take their places
  // in the numbering before this one.
  const uint64_t dropped = __atomic_load_n(&skel_->bss->loss.events_dropped, __ATOMIC_RELAXED);
  seq_ += dropped - dropped_seen_ + 1;
  dropped_seen_ = dropped;
  r.seq = seq_;
  if (sink_) sink_->info(ToJson(r));
  log_.Push(std::move(r));
  delivered_.fetch_add(1, std::memory_order_relaxed);
}

std::vector<prometheus::MetricFamily> ExecCollector::Collect(int* errors) {
  ExecSources src{counts_.get(), failures_.get(), &skel_->bss->loss, events_delivered(), nullptr, Taker()};
  if (workloads_) {
    src.gone = [w = workloads_.get()](uint64_t id, std::chrono::steady_clock::time_point read_at) {
      return w->Gone(id, read_at);
    };
  }
  ExecScrape scrape;
  {
    std::unique_lock lock(mu_);
    scrape = ScrapeExec(src, &tables_, errors);
    state_.Save(lock);  // before what it saves is served
  }
  auto out = ExecFamilies(scrape);
  AppendProgramFamilies(&out);
  return out;
}

}  // namespace execflow
