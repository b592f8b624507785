#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "exporter/bpf/kernel_map.h"
#include "exporter/collectors/collector.h"
#include "exporter/config/config.h"
#include "exporter/workloads/resolver.h"

struct cgroups_bpf;

namespace execflow {

// Records each cgroup v2 folder's path as it is made (bpf/cgroups.bpf.c) for the resolver,
// which can then name a container gone before any walk of cgroupfs saw it.
class CgroupCollector final : public Collector {
 public:
  // Null if workloads.hook is auto and no hook attaches (logged): cgroupfs walks name workloads.
  static Result<std::unique_ptr<CgroupCollector>> Start(const WorkloadsConfig& config,
                                                        std::shared_ptr<WorkloadResolver> workloads,
                                                        const std::string& pin_dir = "");
  ~CgroupCollector() override;

  std::vector<prometheus::MetricFamily> Collect(int* errors) override;
  // The path recorded when cgroup `id` was made ("/a/b"); "" if none is.
  std::string PathOf(uint64_t id) const;

 private:
  CgroupCollector() : Collector("cgroups") {}

  cgroups_bpf* skel_ = nullptr;
  std::optional<KernelMap> paths_;
  std::shared_ptr<WorkloadResolver> workloads_;
};

}  // namespace execflow
