#include "exporter/metrics/families.h"

#include <cstring>
#include <unordered_map>

namespace execflow {
namespace {

prometheus::ClientMetric Sample(const LabelPairs& labels) {
  prometheus::ClientMetric m;
  m.label.reserve(labels.size());
  for (const auto& [k, v] : labels) m.label.push_back({k, v});
  return m;
}

}  // namespace

prometheus::MetricFamily Counter(std::string name, std::string help) {
  return {std::move(name), std::move(help), prometheus::MetricType::Counter, {}};
}

prometheus::MetricFamily Gauge(std::string name, std::string help) {
  return {std::move(name), std::move(help), prometheus::MetricType::Gauge, {}};
}

prometheus::MetricFamily Counter(std::string name, std::string help, double value) {
  auto f = Counter(std::move(name), std::move(help));
  AddCounter(f, {}, value);
  return f;
}

prometheus::MetricFamily Gauge(std::string name, std::string help, double value) {
  auto f = Gauge(std::move(name), std::move(help));
  AddGauge(f, {}, value);
  return f;
}

void AddCounter(prometheus::MetricFamily& f, const LabelPairs& labels, double value) {
  f.metric.push_back(Sample(labels));
  f.metric.back().counter.value = value;
}

void AddGauge(prometheus::MetricFamily& f, const LabelPairs& labels, double value) {
  f.metric.push_back(Sample(labels));
  f.metric.back().gauge.value = value;
}

std::vector<prometheus::MetricFamily> MergeFamilies(
    std::vector<prometheus::MetricFamily> families) {
  std::vector<prometheus::MetricFamily> out;
  std::unordered_map<std::string, size_t> index;
  for (auto& f : families) {
    auto [it, inserted] = index.try_emplace(f.name, out.size());
    if (inserted) {
      out.push_back(std::move(f));
    } else {
      auto& into = out[it->second].metric;
      into.insert(into.end(), std::make_move_iterator(f.metric.begin()),
                  std::make_move_iterator(f.metric.end()));
    }
  }
  return out;
}

}  // namespace execflow

namespace execflow {

void AppendMapFamilies(const std::vector<MapStat>& maps,
                       std::vector<prometheus::MetricFamily>* out) {
  auto entries = Gauge("execflow_bpf_map_entries", "Entries in the BPF map at the last scrape.");
  auto capacity = Gauge("execflow_bpf_map_capacity", "max_entries of the BPF map.");
  auto failures = Counter("execflow_bpf_map_update_failures_total",
                          "Inserts into the BPF map that failed (map full); what they "
                          "carried is counted in an overflow series instead.");
  for (const auto& m : maps) {
    AddGauge(entries, {{"map", m.map}}, m.entries);
    AddGauge(capacity, {{"map", m.map}}, m.capacity);
    AddCounter(failures, {{"map", m.map}}, m.update_failures);
  }
  out->push_back(std::move(entries));
  out->push_back(std::move(capacity));
  out->push_back(std::move(failures));
}

}  // namespace execflow
