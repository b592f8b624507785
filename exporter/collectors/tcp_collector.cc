#include "exporter/collectors/tcp_collector.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <spdlog/spdlog.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "exporter/bpf/loader.h"
#include "exporter/common/unique_fd.h"
#include "exporter/metrics/families.h"
#include "exporter/metrics/histogram.h"
#include "tcp.skel.h"

namespace execflow {

static_assert(sizeof(tcp_flow_key) == 56);
static_assert(sizeof(tcp_send_hist) == (LOG2_SLOTS + 1) * 8);
static_assert(sizeof(tcp_close_event) == 56);
static_assert(sizeof(tcp_loss) == 64);
static_assert(sizeof(tcp_flow_bytes) == 24);
static_assert(offsetof(tcp_sock_bytes, received) == 64);

FlowLabels ParseFlowLabels(const std::vector<std::string>& names) {
  auto has = [&](const char* n) { return std::find(names.begin(), names.end(), n) != names.end(); };
  return {has("saddr"), has("sport"), has("daddr"), has("dport"), has("port"), has("direction"),
          has("namespace"), has("pod"), has("container")};
}

std::vector<prometheus::MetricFamily> TcpFamilies(const SeriesSnapshot& per_flow, const SeriesSnapshot& received,
                                                  const TcpScrape& s) {
  std::vector<prometheus::MetricFamily> out;
  auto bytes = Counter("execflow_tcp_sent_bytes_total",
                       "Bytes accepted by TCP send calls, per flow (configured labels); labels "
                       "\"other\" sum flows over max_series or that found the kernel map full.");
  bytes.metric = per_flow.Build();
  out.push_back(std::move(bytes));
  auto in = Counter("execflow_tcp_received_bytes_total",
                    "Bytes copied by TCP receive calls (MSG_PEEK excluded), per flow (configured "
                    "labels); labels \"other\" sum flows over max_series or that found the kernel "
                    "map full.");
  in.metric = received.Build();
  out.push_back(std::move(in));

  prometheus::MetricFamily hist{"execflow_tcp_sendmsg_bytes",
                                "Bytes accepted per TCP send call.",
                                prometheus::MetricType::Histogram,
                                {}};
  hist.metric.emplace_back();
  hist.metric.back().histogram = Log2Histogram(s.hist.slots, s.hist.sum);
  out.push_back(std::move(hist));

  out.push_back(Gauge("execflow_tcp_flows", "Live TCP flows in the kernel flow map.",
                      static_cast<double>(s.live_flows)));
  auto storage = Gauge("execflow_tcp_storage_info",
                       "Where sends and receives are counted first (tcp.counter_storage): 1 for "
                       "socket (each socket's storage, moved to its flow at close and at each "
                       "scrape) or flow_map (the flow's hash map entry).");
  AddGauge(storage, {{"storage", s.counter_storage}}, 1);
  out.push_back(std::move(storage));
  out.push_back(Gauge("execflow_tcp_folded_flows",
                      "Live TCP flows summed into the \"other\" series because of max_series.",
                      static_cast<double>(s.folded_flows)));
  out.push_back(Counter("execflow_tcp_flows_closed_total",
                        "TCP flows whose final totals were taken out of the kernel map at close.",
                        static_cast<double>(s.flows_closed)));
  out.push_back(Counter("execflow_tcp_close_events_dropped_total",
                        "Flow close notices lost to a full ring buffer; those flows stay in the "
                        "kernel map (their bytes are still counted).",
                        static_cast<double>(s.loss.close_events_dropped)));
  auto uncounted = Counter("execflow_tcp_sends_uncounted_total",
                           "TCP send calls whose bytes could not be counted (kprobe mode): the "
                           "kretprobe missed the return (more calls in flight than it follows), "
                           "or the map of sends in flight was full.");
  AddCounter(uncounted, {{"reason", "kretprobe_missed"}},
             static_cast<double>(s.loss.kretprobe_missed));
  AddCounter(uncounted, {{"reason", "inflight_map_full"}}, static_cast<double>(s.loss.inflight_full));
  out.push_back(std::move(uncounted));
  auto recv_uncounted = Counter("execflow_tcp_receives_uncounted_total",
                                "TCP receive calls whose bytes could not be counted (kprobe mode), "
                                "for the same reasons; receives that block waiting for data hold "
                                "their kretprobe instance meanwhile.");
  AddCounter(recv_uncounted, {{"reason", "kretprobe_missed"}},
             static_cast<double>(s.loss.recv_kretprobe_missed));
  AddCounter(recv_uncounted, {{"reason", "inflight_map_full"}}, static_cast<double>(s.loss.recv_inflight_full));
  out.push_back(std::move(recv_uncounted));

  AppendMapFamilies({{"tcp_flows", static_cast<double>(s.live_flows),
                      static_cast<double>(s.flow_capacity),
                      static_cast<double>(s.loss.overflow_sends)}},
                    &out);
  return out;
}

TcpCollector::TcpCollector(const TcpConfig& config, std::shared_ptr<WorkloadResolver> workloads,
                           SeriesTable<tcp_flow_key>::Clock clock)
    : Collector("tcp"),
      workloads_(std::move(workloads)),
      table_(ParseFlowLabels(config.labels), config.max_series, config.closed_flow_retention,
             WorkloadsOf(workloads_.get()), clock),
      received_(ParseFlowLabels(config.labels), config.max_series, config.closed_flow_retention,
                WorkloadsOf(workloads_.get()), clock) {}

namespace {

// How many arguments this kernel's tcp_recvmsg has, by BTF (see TcpHooks); 5 if unknown.
int RecvmsgArgs() {
  btf* vmlinux = btf__load_vmlinux_btf();
  if (!vmlinux) return 5;
  int args = 5;
  const int id = btf__find_by_name_kind(vmlinux, "tcp_recvmsg", BTF_KIND_FUNC);
  if (id > 0) {
    const btf_type* proto = btf__type_by_id(vmlinux, btf__type_by_id(vmlinux, id)->type);
    if (proto) args = btf_vlen(proto);
  }
  btf__free(vmlinux);
  return args;
}

// Whether the kernel loads the iterator socket storage mode needs to move bytes at each scrape
// (hardened kernels may refuse BPF iterators as they refuse fexit), tried alone first: its
// refusal is then the reason given, not that of every hook mode tried with it.
Result<void> MoveIteratorLoads(const std::function<Result<void>(tcp_bpf*)>& configure) {
  SkelPtr<tcp_bpf> s(tcp_bpf::open());
  if (!s) return Fail("open bpf object", errno);
  bpf_program* p;
  bpf_object__for_each_program(p, s->obj) bpf_program__set_autoload(p, false);
  if (auto ok = configure(s.get()); !ok) return ok;  // autoloads tcp_move_iter
  QuietLibbpf quiet;
  if (int err = tcp_bpf::load(s.get()); err != 0) return FailErrno("load iter/bpf_sk_storage_map tcp_move_iter", err);
  return {};
}

}  // namespace

Result<std::unique_ptr<TcpCollector>> TcpCollector::Start(const TcpConfig& config,
                                                          Transport transport,
                                                          std::shared_ptr<WorkloadResolver> workloads,
                                                          const std::string& pin_dir,
                                                          SeriesTable<tcp_flow_key>::Clock clock) {
  std::unique_ptr<TcpCollector> c(new TcpCollector(config, std::move(workloads), std::move(clock)));
  const int recvmsg_args = RecvmsgArgs();
  // Socket storage needs tracing programs: not with a kprobe or classic tracepoint mode forced.
  auto tracing = [](const std::string& mode) { return mode == "auto" || mode == "fexit" || mode == "tp_btf"; };
  bool socket_storage = config.counter_storage == "socket" ||
                        (config.counter_storage == "auto" && tracing(config.hook) && tracing(config.receive_hook) &&
                         (config.close_hook == "auto" || config.close_hook == "tp_btf"));
  std::function<Result<void>(tcp_bpf*)> configure = [&](tcp_bpf* s) -> Result<void> {
    s->rodata->targ_perfbuf = transport == Transport::kPerfbuf;
    // Run by MoveSocketBytes, not attached to a hook.
    bpf_program__set_autoload(s->progs.tcp_move_iter, socket_storage);
    s->rodata->targ_recvmsg_nonblock_arg = recvmsg_args == 6;
    const FlowLabels labels = ParseFlowLabels(config.labels);
    s->rodata->targ_direction = labels.port || labels.direction;
    int err = bpf_map__set_max_entries(s->maps.tcp_flows, config.max_flows);
    // One entry per live socket when directions are kept; else the exporter's own
    // accepted connections only (civetweb serves at most 4,096 at once).
    if (!err) {
      err = bpf_map__set_max_entries(s->maps.tcp_sock_direction, s->rodata->targ_direction ? config.max_flows : 8192);
    }
    // Only kprobe modes use the in-flight maps; elsewhere 1 entry (the minimum) saves ~1 MiB each.
    if (!err && !bpf_program__autoload(s->progs.tcp_sendmsg_kprobe)) {
      err = bpf_map__set_max_entries(s->maps.tcp_send_args, 1);
    }
    if (!err && !bpf_program__autoload(s->progs.tcp_recvmsg_kprobe)) {
      err = bpf_map__set_max_entries(s->maps.tcp_recv_args, 1);
    }
    if (err) return FailErrno("size tcp maps", err);
    return ConfigureTransport(transport, s->maps.tcp_closed, TCP_DEFAULT_CLOSED_RINGBUF_BYTES);
  };
  const std::map<std::string, std::string> forced = {
      {"tcp.hook", config.hook}, {"tcp.receive_hook", config.receive_hook}, {"tcp.close_hook", config.close_hook}};
  // Socket storage first, unless the config says flow_map; auto falls back to the flow map.
  Result<Attached<tcp_bpf>> attached = std::unexpected(Error{"", 0});
  if (socket_storage) {
    auto iter = MoveIteratorLoads(configure);
    attached = iter ? SelectAndAttach<tcp_bpf>(TcpHooks(recvmsg_args, true), forced, configure, pin_dir)
                    : std::unexpected(iter.error());
  }
  if (!attached && socket_storage && config.counter_storage == "auto") {
    spdlog::info("tcp: counting in the flow map: socket storage refused ({})", attached.error().message);
    socket_storage = false;
  }
  if (!socket_storage) attached = SelectAndAttach<tcp_bpf>(TcpHooks(recvmsg_args, false), forced, configure, pin_dir);
  if (!attached) {
    if (socket_storage) attached.error().message = "tcp.counter_storage socket: " + attached.error().message;
    return std::unexpected(attached.error());
  }
  c->send_mode_ = attached->plan.ModeOf("tcp send");
  c->counter_storage_ = socket_storage ? "socket" : "flow_map";
  c->skel_ = c->Keep(std::move(*attached));
  if (socket_storage) {
    union bpf_iter_link_info info {};
    info.map.map_fd = bpf_map__fd(c->skel_->maps.tcp_sock_bytes);
    LIBBPF_OPTS(bpf_iter_attach_opts, opts, .link_info = &info, .link_info_len = sizeof(info));
    c->move_iter_.reset(bpf_program__attach_iter(c->skel_->progs.tcp_move_iter, &opts));
    if (!c->move_iter_) return Fail("attach iter/bpf_sk_storage_map tcp_move_iter", errno);
  }

  auto flows = OpenMapReader<tcp_flow_key, tcp_flow_bytes>(c->skel_->maps.tcp_flows);
  if (!flows) return std::unexpected(flows.error());
  c->flows_ = std::move(*flows);
  auto hist = KernelMap::Of(c->skel_->maps.tcp_send_hist);
  if (!hist) return std::unexpected(hist.error());
  c->hist_ = std::move(*hist);
  c->state_.Keep<tcp_flow_key>("tcp_sent", &c->table_, c->flows_.get(), offsetof(tcp_flow_bytes, sent) / 8);
  c->state_.Keep<tcp_flow_key>("tcp_received", &c->received_, c->flows_.get(), offsetof(tcp_flow_bytes, received) / 8);
  c->ReadyWhenReadable(&c->flows_->map());
  auto reads = c->ReadsEvents({transport, bpf_map__fd(c->skel_->maps.tcp_closed),
                               bpf_map__fd(c->skel_->maps.tcp_closed_perf), TCP_DEFAULT_CLOSED_RINGBUF_BYTES,
                               "tcp close notices"});
  if (!reads) return std::unexpected(reads.error());
  if (!c->flows_->AtomicTake()) {
    spdlog::info("tcp: this kernel has no lookup-and-delete for hash maps (5.14+): closed flows leave the "
                 "kernel map at the second scrape after they close");
  }
  return c;
}

void TcpCollector::UseLookupThenDelete() {
  std::lock_guard lock(mu_);
  flows_->DisableLookupAndDelete();
}

void TcpCollector::OnRecord(const void* data, size_t size) {
  if (size < sizeof(tcp_close_event)) return;
  tcp_close_event e;
  std::memcpy(&e, data, sizeof(e));
  std::unique_lock lock(mu_);
  // Without an atomic take, the scrapes take closed flows (see ReadFlowsLocked).
  if (!flows_->AtomicTake()) return;
  TakeFlowLocked(e.key);
  if (state_.JournalLong()) state_.Save(lock);
}

void TcpCollector::Closed(const uint8_t* key, const uint8_t* value) {
  tcp_flow_key k;
  tcp_flow_bytes bytes;
  std::memcpy(&k, key, sizeof(k));
  std::memcpy(&bytes, value, sizeof(bytes));
  if (bytes.sent) table_.Closed(k, bytes.sent);
  if (bytes.received) received_.Closed(k, bytes.received);
  ++flows_closed_;
}

bool TcpCollector::TakeFlowLocked(const tcp_flow_key& key) {
  // Absent: taken already (a second notice, or a scrape).
  return TakeLocked(*flows_, &key, [this](const uint8_t* k, const uint8_t* v) { Closed(k, v); });
}

Result<size_t> TcpCollector::ReadFlowsLocked() {
  // Closed flows are marked in the kernel map, so a lost close notice (full ring buffer, no
  // exporter running) leaves no entry behind. Where a take is a lookup then a delete (before
  // 5.14), bytes added in between would be lost; a closed socket's last sends (after an RST) end
  // within microseconds, so such a flow is taken one scrape after a scrape first saw it closed.
  const bool atomic = flows_->AtomicTake();
  std::set<std::string> closed_now;
  auto done = [&](const uint8_t* key, const uint8_t* value) {
    tcp_flow_bytes v;
    std::memcpy(&v, value, sizeof(v));
    if (!v.closed) return false;
    std::string id(reinterpret_cast<const char*>(key), sizeof(tcp_flow_key));
    const bool take = atomic || closed_seen_.count(id);
    closed_now.insert(std::move(id));  // taken, or seen closed for the next scrape
    return take;
  };
  auto n = ReadLive(*flows_, keys_, values_, done, [this](const uint8_t* k, const uint8_t* v) { Closed(k, v); },
                    Taker());
  closed_seen_.swap(closed_now);
  return n;
}

Result<void> TcpCollector::MoveSocketBytes() const {
  UniqueFd iter(bpf_iter_create(bpf_link__fd(move_iter_.get())));
  if (iter.get() < 0) return Fail("create tcp_move_iter", errno);
  // The program writes nothing: reading to the end runs it over every socket's storage. The
  // kernel pauses a read that has written nothing after a million sockets (EAGAIN): read on.
  char buf[64];
  ssize_t n;
  while ((n = read(iter.get(), buf, sizeof(buf))) != 0) {
    if (n < 0 && errno != EAGAIN && errno != EINTR) return Fail("run tcp_move_iter", errno);
  }
  return {};
}

Result<void> TcpCollector::ReadHistogram(tcp_send_hist* out) const {
  // One value per possible CPU (tcp_send_hist's size is a multiple of 8, so they are packed).
  std::vector<tcp_send_hist> per_cpu(hist_->lookup_size() / sizeof(tcp_send_hist));
  const __u32 zero = 0;
  if (auto ok = hist_->Lookup(&zero, sizeof(zero), per_cpu.data(), per_cpu.size() * sizeof(tcp_send_hist)); !ok) {
    return ok;
  }
  *out = {};
  for (const auto& h : per_cpu) {
    for (int k = 0; k < LOG2_SLOTS; ++k) out->slots[k] += h.slots[k];
    out->sum += h.sum;
  }
  return {};
}

std::vector<prometheus::MetricFamily> TcpCollector::Collect(int* errors) {
  TcpScrape s;
  s.flow_capacity = flows_->Capacity();
  if (auto ok = ReadHistogram(&s.hist); !ok) {
    ++*errors;
    spdlog::debug("collect tcp: {}", ok.error().message);
  }
  // Map read and deltas under one hold of the lock: no close notice may take a flow in between.
  SeriesSnapshot flows, received;
  {
    std::unique_lock lock(mu_);
    const tcp_loss& loss = skel_->bss->loss;
    s.loss = {LoadCounter(loss.overflow_bytes), LoadCounter(loss.overflow_sends),
              LoadCounter(loss.overflow_received), LoadCounter(loss.close_events_dropped),
              LoadCounter(loss.inflight_full), LoadCounter(loss.kretprobe_missed),
              LoadCounter(loss.recv_inflight_full), LoadCounter(loss.recv_kretprobe_missed)};
    s.flows_closed = flows_closed_;
    s.counter_storage = counter_storage_;
    // Socket storage mode: bytes still in sockets' storage move to the flow map first. If that
    // fails, they stay there for the next scrape (nothing is lost) and this one is behind.
    if (move_iter_) {
      if (auto moved = MoveSocketBytes(); !moved) {
        ++*errors;
        spdlog::debug("collect tcp: {}", moved.error().message);
      }
    }
    // Values: tcp_flow_bytes. A flow that only sent (or received) has no series in the other table.
    if (auto n = ReadFlowsLocked()) {
      const size_t live = *n;
      s.live_flows = live;
      table_.Scrape(keys_.data(), values_.data() + offsetof(tcp_flow_bytes, sent), sizeof(tcp_flow_bytes), live,
                    s.loss.overflow_bytes);
      received_.Scrape(keys_.data(), values_.data() + offsetof(tcp_flow_bytes, received), sizeof(tcp_flow_bytes),
                       live, s.loss.overflow_received);
    } else {
      ++*errors;
      spdlog::debug("collect tcp: {}", n.error().message);
    }
    s.folded_flows = table_.folded();
    flows = table_.Snapshot();
    received = received_.Snapshot();
    state_.Save(lock);  // before what it saves is served
  }
  auto out = TcpFamilies(flows, received, s);
  AppendProgramFamilies(&out);
  return out;
}

void TcpCollector::IgnoreOwnPorts(const std::vector<uint16_t>& ports) {
  struct stat st {};
  if (stat("/proc/self/ns/net", &st) != 0) {
    spdlog::warn("tcp: cannot read this process's network namespace (/proc/self/ns/net): {}; "
                 "connections to the exporter's own port are counted as flows",
                 std::strerror(errno));
    return;
  }
  auto& bss = *skel_->bss;
  for (size_t i = 0; i < TCP_MAX_OWN_PORTS; ++i) {
    __atomic_store_n(&bss.own_ports[i], i < ports.size() ? ports[i] : 0, __ATOMIC_RELAXED);
  }
  if (ports.size() > TCP_MAX_OWN_PORTS) {
    spdlog::warn("tcp: the exporter listens on {} ports; connections to those after the first {} are counted as flows",
                 ports.size(), TCP_MAX_OWN_PORTS);
  }
  __atomic_store_n(&bss.own_netns, static_cast<__u32>(st.st_ino), __ATOMIC_RELEASE);
}

std::optional<tcp_flow_bytes> TcpCollector::KernelFlow(const tcp_flow_key& key) const {
  tcp_flow_bytes bytes;
  if (!flows_->map().Lookup(key, &bytes)) return std::nullopt;
  return bytes;
}

Result<void> TcpCollector::PutSocketBytes(int sock_fd, const tcp_sock_bytes& bytes) const {
  auto map = KernelMap::Of(skel_->maps.tcp_sock_bytes);
  if (!map) return std::unexpected(map.error());
  return map->Update(&sock_fd, sizeof(sock_fd), &bytes, sizeof(bytes), BPF_ANY);
}

}  // namespace execflow
