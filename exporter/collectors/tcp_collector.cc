#include "exporter/collectors/tcp_collector.h"

#include <bpf/bpf.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "exporter/bpf/loader.h"
#include "exporter/metrics/families.h"
#include "exporter/metrics/histogram.h"
#include "tcp.skel.h"

namespace execflow {

static_assert(sizeof(tcp_flow_key) == 40);
static_assert(sizeof(tcp_send_hist) == (LOG2_SLOTS + 1) * 8);
static_assert(sizeof(tcp_close_event) == 40);
static_assert(sizeof(tcp_loss) == 24);

const HookGroup& TcpSendHookGroup() {
  static const HookGroup g{"tcp send",
                           {{"fexit", {"tcp_sendmsg_fexit"}},
                            {"kprobe", {"tcp_sendmsg_kprobe", "tcp_sendmsg_kretprobe"}},
                            {"tp_btf", {"sock_send_btf"}},
                            {"tracepoint", {"sock_send_tp"}}},
                           true};
  return g;
}

const HookGroup& TcpSendpageHookGroup() {
  static const HookGroup g{"tcp sendpage",
                           {{"fexit", {"tcp_sendpage_fexit"}},
                            {"kprobe", {"tcp_sendpage_kprobe", "tcp_sendpage_kretprobe"}}},
                           false};
  return g;
}

const HookGroup& TcpCloseHookGroup() {
  static const HookGroup g{"tcp close",
                           {{"tp_btf", {"inet_state_btf"}}, {"tracepoint", {"inet_state_tp"}}},
                           true};
  return g;
}

FlowLabels ParseFlowLabels(const std::vector<std::string>& names) {
  auto has = [&](const char* n) { return std::find(names.begin(), names.end(), n) != names.end(); };
  return {has("saddr"), has("sport"), has("daddr"), has("dport")};
}

std::vector<prometheus::MetricFamily> TcpFamilies(const FlowTable& table, const TcpScrape& s) {
  std::vector<prometheus::MetricFamily> out;
  auto bytes = Counter("execflow_tcp_sent_bytes_total",
                       "Bytes accepted by TCP send calls, per flow (configured labels); labels "
                       "\"other\" sum flows over max_series or that found the kernel map full.");
  bytes.metric = table.Export();
  out.push_back(std::move(bytes));

  prometheus::MetricFamily hist{"execflow_tcp_sendmsg_bytes",
                                "Bytes accepted per TCP send call.",
                                prometheus::MetricType::Histogram,
                                {}};
  hist.metric.emplace_back();
  hist.metric.back().histogram = Log2Histogram(s.hist.slots, s.hist.sum);
  out.push_back(std::move(hist));

  auto flows = Gauge("execflow_tcp_flows", "Live TCP flows in the kernel flow map.");
  AddGauge(flows, {}, static_cast<double>(s.live_flows));
  out.push_back(std::move(flows));
  auto folded = Gauge("execflow_tcp_folded_flows",
                      "Live TCP flows summed into the \"other\" series because of max_series.");
  AddGauge(folded, {}, static_cast<double>(table.folded_flows()));
  out.push_back(std::move(folded));
  auto closed = Counter("execflow_tcp_flows_closed_total",
                        "TCP flows whose final totals were taken out of the kernel map at close.");
  AddCounter(closed, {}, static_cast<double>(s.flows_closed));
  out.push_back(std::move(closed));
  auto dropped = Counter("execflow_tcp_close_events_dropped_total",
                         "Flow close notices lost to a full ring buffer; those flows stay in the "
                         "kernel map (their bytes are still counted).");
  AddCounter(dropped, {}, static_cast<double>(s.loss.close_events_dropped));
  out.push_back(std::move(dropped));

  AppendMapFamilies({{"tcp_flows", static_cast<double>(s.live_flows),
                      static_cast<double>(s.flow_capacity),
                      static_cast<double>(s.loss.overflow_sends)}},
                    &out);
  return out;
}

TcpCollector::TcpCollector(const TcpConfig& config)
    : table_(ParseFlowLabels(config.labels), config.max_series,
             config.closed_flow_retention_scrapes) {}

Result<std::unique_ptr<TcpCollector>> TcpCollector::Start(const TcpConfig& config) {
  std::unique_ptr<TcpCollector> c(new TcpCollector(config));
  // Only the kprobe mode uses tcp_send_args; elsewhere one entry (the
  // minimum) saves its preallocated ~1 MiB. Empty while probing.
  std::string final_mode;
  std::function<Result<void>(tcp_bpf*)> configure = [&](tcp_bpf* s) -> Result<void> {
    int err = bpf_map__set_max_entries(s->maps.tcp_flows, config.max_flows);
    if (!err && !final_mode.empty() && final_mode != "kprobe") {
      err = bpf_map__set_max_entries(s->maps.tcp_send_args, 1);
    }
    if (err) return FailErrno("size tcp maps", err);
    return {};
  };
  const auto probe = Prober<tcp_bpf>(configure);
  std::vector<HookChoice> choices;
  auto send = ChooseHook(TcpSendHookGroup(), config.hook, probe);
  if (!send) return std::unexpected(send.error());
  choices.push_back(*send);
  auto close = ChooseHook(TcpCloseHookGroup(), config.close_hook, probe);
  if (!close) return std::unexpected(close.error());
  choices.push_back(*close);
  c->send_mode_ = send->variant->mode;
  // Before 6.5 sendfile()/splice() reach TCP through tcp_sendpage, which the
  // function hooks must cover too; the sock_send_length tracepoint (6.3+)
  // fires in sock_sendmsg, which 6.5+ uses for pages as well.
  if (c->send_mode_ == "fexit" || c->send_mode_ == "kprobe") {
    auto page = ChooseHook(TcpSendpageHookGroup(), c->send_mode_, probe);
    if (!page) return std::unexpected(page.error());
    choices.push_back(*page);
  }
  std::vector<std::string> programs;
  for (const auto& ch : choices) {
    c->rejected_.insert(c->rejected_.end(), ch.rejected.begin(), ch.rejected.end());
    if (ch.variant) programs.insert(programs.end(), ch.variant->programs.begin(), ch.variant->programs.end());
  }
  final_mode = c->send_mode_;
  auto attached = LoadAndAttach<tcp_bpf>(programs, configure);
  if (!attached) return std::unexpected(attached.error());
  c->skel_ = std::move(attached->skel);
  c->links_ = std::move(attached->links);
  for (bpf_program* p : attached->programs) c->programs_.push_back(DescribeProgram(p));

  c->flows_ = std::make_unique<BpfMapReader>(bpf_map__fd(c->skel_->maps.tcp_flows), "tcp_flows",
                                             sizeof(tcp_flow_key), sizeof(__u64), config.max_flows);
  auto consumer = RingConsumer::Start(
      bpf_map__fd(c->skel_->maps.tcp_closed), "tcp close notices",
      [p = c.get()](const void* data, size_t size) { p->OnClose(data, size); });
  if (!consumer) return std::unexpected(consumer.error());
  c->consumer_ = std::move(*consumer);
  return c;
}

TcpCollector::~TcpCollector() {
  consumer_.reset();
  links_.clear();
}

void TcpCollector::OnClose(const void* data, size_t size) {
  if (size < sizeof(tcp_close_event)) return;
  tcp_close_event e;
  std::memcpy(&e, data, sizeof(e));
  const int fd = bpf_map__fd(skel_->maps.tcp_flows);
  __u64 bytes = 0;
  std::lock_guard lock(mu_);
  if (lookup_and_delete_) {
    if (bpf_map_lookup_and_delete_elem(fd, &e.key, &bytes) == 0) {
      table_.Closed(e.key, bytes);
      ++flows_closed_;
      return;
    }
    if (errno == ENOENT) return;  // already taken (a second close notice)
    // Hash maps support lookup-and-delete since 5.14; before, a send landing
    // between the two calls below would be lost, but a socket that reached
    // TCP_CLOSE accepts no more bytes.
    spdlog::info("tcp: map lookup-and-delete unsupported ({}), using lookup then delete",
                 std::strerror(errno));
    lookup_and_delete_ = false;
  }
  if (bpf_map_lookup_elem(fd, &e.key, &bytes) == 0 && bpf_map_delete_elem(fd, &e.key) == 0) {
    table_.Closed(e.key, bytes);
    ++flows_closed_;
  }
}

Result<void> TcpCollector::ReadHistogram(tcp_send_hist* out) const {
  const int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return Fail("count possible cpus", -ncpu);
  std::vector<tcp_send_hist> per_cpu(ncpu);
  __u32 zero = 0;
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.tcp_send_hist), &zero, per_cpu.data()) < 0) {
    return Fail("read map tcp_send_hist", errno);
  }
  *out = {};
  for (const auto& h : per_cpu) {
    for (int k = 0; k < LOG2_SLOTS; ++k) out->slots[k] += h.slots[k];
    out->sum += h.sum;
  }
  return {};
}

std::vector<prometheus::MetricFamily> TcpCollector::Collect(int* errors) const {
  TcpScrape s;
  s.flow_capacity = flows_->Capacity();
  if (auto ok = ReadHistogram(&s.hist); !ok) {
    ++*errors;
    spdlog::debug("collect tcp: {}", ok.error().message);
  }
  std::vector<prometheus::MetricFamily> out;
  {
    std::lock_guard lock(mu_);
    const tcp_loss& loss = skel_->bss->loss;
    s.loss = {LoadCounter(loss.overflow_bytes), LoadCounter(loss.overflow_sends),
              LoadCounter(loss.close_events_dropped)};
    s.flows_closed = flows_closed_;
    auto entries = ReadEntries<tcp_flow_key, __u64>(*flows_);
    std::vector<FlowTable::LiveFlow> live;
    if (entries) {
      live.reserve(entries->size());
      for (const auto& e : *entries) live.push_back({e.key, e.value});
      s.live_flows = live.size();
      table_.Scrape(live, s.loss.overflow_bytes);
    } else {
      ++*errors;
      spdlog::debug("collect tcp: {}", entries.error().message);
    }
    out = TcpFamilies(table_, s);
  }
  AppendProgramFamilies(programs_, &out);
  return out;
}

bool TcpCollector::TracksFlow(const tcp_flow_key& key) const {
  __u64 bytes;
  return bpf_map_lookup_elem(bpf_map__fd(skel_->maps.tcp_flows), &key, &bytes) == 0;
}

Result<void> TcpCollector::Ready() const {
  if (links_.empty()) return Fail("tcp: no program attached");
  tcp_flow_key key;
  if (bpf_map_get_next_key(bpf_map__fd(skel_->maps.tcp_flows), nullptr, &key) < 0 && errno != ENOENT) {
    return Fail("tcp: read map tcp_flows", errno);
  }
  return {};
}

}  // namespace execflow
