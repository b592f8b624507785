#pragma once

#include <string>
#include <utility>
#include <vector>

#include <prometheus/metric_family.h>

namespace execflow {

using LabelPairs = std::vector<std::pair<std::string, std::string>>;

prometheus::MetricFamily Counter(std::string name, std::string help);
prometheus::MetricFamily Gauge(std::string name, std::string help);
// A family of one sample without labels.
prometheus::MetricFamily Counter(std::string name, std::string help, double value);
prometheus::MetricFamily Gauge(std::string name, std::string help, double value);
void AddCounter(prometheus::MetricFamily& f, const LabelPairs& labels, double value);
void AddGauge(prometheus::MetricFamily& f, const LabelPairs& labels, double value);

// Joins same-name families (collectors share execflow_bpf_*): each exposed once, first-seen order.
std::vector<prometheus::MetricFamily> MergeFamilies(
    std::vector<prometheus::MetricFamily> families);

}  // namespace execflow

namespace execflow {

// One BPF map as execflow_bpf_map_{entries,capacity,update_failures_total} show it.
struct MapStat {
  std::string map;
  double entries = 0;
  double capacity = 0;
  double update_failures = 0;
};
void AppendMapFamilies(const std::vector<MapStat>& maps,
                       std::vector<prometheus::MetricFamily>* out);

}  // namespace execflow
