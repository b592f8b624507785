#include "exporter/metrics/flows.h"

#include <arpa/inet.h>

#include <cstring>
#include <string_view>

namespace execflow {

std::vector<std::string> FlowLabels::Names() const {
  std::vector<std::string> n;
  if (saddr) n.push_back("saddr");
  if (sport) n.push_back("sport");
  if (daddr) n.push_back("daddr");
  if (dport) n.push_back("dport");
  return n;
}

namespace {

constexpr uint8_t kV4MappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool IsV4Mapped(const uint8_t (&addr)[16]) {
  return std::memcmp(addr, kV4MappedPrefix, sizeof(kV4MappedPrefix)) == 0;
}

// IPv4-mapped IPv6 flows become IPv4 so both spellings of a peer share labels.
tcp_flow_key Normalize(const tcp_flow_key& k) {
  tcp_flow_key n = k;
  if (k.family == EXECFLOW_AF_INET6 && IsV4Mapped(k.saddr) && IsV4Mapped(k.daddr)) {
    std::memset(n.saddr, 0, sizeof(n.saddr));
    std::memset(n.daddr, 0, sizeof(n.daddr));
    std::memcpy(n.saddr, k.saddr + 12, 4);
    std::memcpy(n.daddr, k.daddr + 12, 4);
    n.family = EXECFLOW_AF_INET;
  }
  return n;
}

}  // namespace

std::string FormatAddress(uint16_t family, const uint8_t (&addr)[16]) {
  char buf[INET6_ADDRSTRLEN];
  if (family == EXECFLOW_AF_INET6 && IsV4Mapped(addr)) {
    return inet_ntop(AF_INET, addr + 12, buf, sizeof(buf));
  }
  if (family == EXECFLOW_AF_INET) return inet_ntop(AF_INET, addr, buf, sizeof(buf));
  if (family == EXECFLOW_AF_INET6) return inet_ntop(AF_INET6, addr, buf, sizeof(buf));
  return "unknown";
}

size_t FlowKeyHash::operator()(const tcp_flow_key& k) const {
  return std::hash<std::string_view>()(
      std::string_view(reinterpret_cast<const char*>(&k), sizeof(k)));
}

bool FlowKeyEq::operator()(const tcp_flow_key& a, const tcp_flow_key& b) const {
  return std::memcmp(&a, &b, sizeof(a)) == 0;
}

FlowTable::FlowTable(FlowLabels labels, size_t max_series, uint32_t closed_retention_scrapes)
    : labels_(labels), max_series_(max_series), retention_(closed_retention_scrapes) {}

tcp_flow_key FlowTable::SeriesKeyOf(const tcp_flow_key& flow) const {
  tcp_flow_key k = Normalize(flow);
  if (!labels_.saddr) std::memset(k.saddr, 0, sizeof(k.saddr));
  if (!labels_.daddr) std::memset(k.daddr, 0, sizeof(k.daddr));
  if (!labels_.sport) k.sport = 0;
  if (!labels_.dport) k.dport = 0;
  if (!labels_.saddr && !labels_.daddr) k.family = 0;
  k.pad = 0;
  return k;
}

FlowTable::SeriesState* FlowTable::SeriesOf(const tcp_flow_key& flow) {
  const tcp_flow_key key = SeriesKeyOf(flow);
  auto it = series_.find(key);
  if (it != series_.end()) return &it->second;
  if (series_.size() >= max_series_) return nullptr;
  SeriesState s;
  const tcp_flow_key n = Normalize(flow);
  auto& l = s.sample.label;
  if (labels_.saddr) l.push_back({"saddr", FormatAddress(n.family, n.saddr)});
  if (labels_.sport) l.push_back({"sport", std::to_string(n.sport)});
  if (labels_.daddr) l.push_back({"daddr", FormatAddress(n.family, n.daddr)});
  if (labels_.dport) l.push_back({"dport", std::to_string(n.dport)});
  return &series_.emplace(key, std::move(s)).first->second;
}

void FlowTable::Add(SeriesState* s, uint64_t delta, bool live, bool closed) {
  if (!s) {
    other_bytes_ += static_cast<double>(delta);
    return;
  }
  s->sample.counter.value += static_cast<double>(delta);
  s->touched = s->touched || delta > 0 || closed;
  s->live = s->live || live;
}

void FlowTable::Closed(const tcp_flow_key& key, uint64_t final_bytes) {
  Seen seen;
  if (auto it = last_seen_.find(key); it != last_seen_.end()) {
    seen = it->second;
    last_seen_.erase(it);
  }
  // A re-created entry (same 4-tuple reused) restarts below what we saw.
  const uint64_t delta = final_bytes >= seen.bytes ? final_bytes - seen.bytes : final_bytes;
  Add(seen.series ? seen.series : SeriesOf(key), delta, false, true);
}

void FlowTable::Scrape(const std::vector<LiveFlow>& live, uint64_t overflow_bytes) {
  for (auto& [_, s] : series_) s.live = false;
  folded_flows_ = 0;
  ++scrapes_;
  for (const LiveFlow& f : live) {
    Seen& last = last_seen_[f.key];
    const uint64_t delta = f.bytes >= last.bytes ? f.bytes - last.bytes : f.bytes;
    last.bytes = f.bytes;
    last.scrape = scrapes_;
    if (!last.series) last.series = SeriesOf(f.key);
    if (!last.series) ++folded_flows_;
    Add(last.series, delta, true, false);
  }
  // Entries leave the kernel map only through Closed(); drop what vanished otherwise.
  std::erase_if(last_seen_, [this](const auto& kv) { return kv.second.scrape != scrapes_; });
  if (overflow_bytes > overflow_seen_) {
    other_bytes_ += static_cast<double>(overflow_bytes - overflow_seen_);
    overflow_seen_ = overflow_bytes;
  }
  // Series without live flows are shown for `retention_` scrapes after their
  // final bytes arrived, then forgotten. Every flow left in last_seen_ is live,
  // so no Seen::series points at a series erased here.
  for (auto it = series_.begin(); it != series_.end();) {
    SeriesState& s = it->second;
    s.idle_scrapes = s.live ? 0 : (s.touched ? 1 : s.idle_scrapes + 1);
    s.touched = false;
    it = s.idle_scrapes > retention_ ? series_.erase(it) : std::next(it);
  }
}

std::vector<prometheus::ClientMetric> FlowTable::Export() const {
  std::vector<prometheus::ClientMetric> out;
  out.reserve(series_.size() + 1);
  for (const auto& [_, s] : series_) out.push_back(s.sample);
  if (other_bytes_ > 0) {
    prometheus::ClientMetric other;
    for (const auto& name : labels_.Names()) other.label.push_back({name, "other"});
    other.counter.value = other_bytes_;
    out.push_back(std::move(other));
  }
  return out;
}

}  // namespace execflow
