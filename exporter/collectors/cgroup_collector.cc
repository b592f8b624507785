#include "exporter/collectors/cgroup_collector.h"

#include <cstring>

#include <spdlog/spdlog.h>

#include "bpf/cgroups.h"
#include "cgroups.skel.h"
#include "exporter/bpf/loader.h"
#include "exporter/metrics/families.h"

namespace execflow {

Result<std::unique_ptr<CgroupCollector>> CgroupCollector::Start(const WorkloadsConfig& config,
                                                                std::shared_ptr<WorkloadResolver> workloads,
                                                                const std::string& pin_dir) {
  std::unique_ptr<CgroupCollector> c(new CgroupCollector());
  std::function<Result<void>(cgroups_bpf*)> configure = [](cgroups_bpf*) -> Result<void> { return {}; };
  auto attached = SelectAndAttach<cgroups_bpf>(CgroupHooks(), {{"workloads.hook", config.hook}}, configure, pin_dir);
  if (!attached) return std::unexpected(attached.error());
  if (attached->plan.ModeOf("cgroup mkdir").empty()) {
    for (const auto& r : attached->plan.Rejected()) {
      spdlog::warn("workloads: {}: containers gone within a scrape may lose their names", r);
    }
    return std::unique_ptr<CgroupCollector>();
  }
  cgroups_bpf* s = c->skel_ = c->Keep(std::move(*attached));
  auto paths = KernelMap::Of(s->maps.cgroup_paths);
  if (!paths) return std::unexpected(paths.error());
  c->paths_ = std::move(*paths);
  c->ReadyWhenReadable(&*c->paths_);
  // The kernel's paths start at the hierarchy's root: of no use below another root.
  if (workloads && !workloads->whole_hierarchy()) {
    spdlog::warn("workloads: {} is not the cgroup v2 hierarchy's root: cgroup paths recorded as cgroups "
                 "are made are not used", workloads->cgroup_root());
  } else if (workloads) {
    c->workloads_ = std::move(workloads);
    c->workloads_->LearnPathsFrom([col = c.get()](uint64_t id) { return col->PathOf(id); });
  }
  return c;
}

CgroupCollector::~CgroupCollector() {
  if (workloads_) workloads_->LearnPathsFrom(nullptr);
  Stop();
}

std::string CgroupCollector::PathOf(uint64_t id) const {
  cgroup_path p;
  if (!paths_->Lookup(id, &p)) return {};
  return std::string(p.path, strnlen(p.path, sizeof(p.path)));
}

std::vector<prometheus::MetricFamily> CgroupCollector::Collect(int*) {
  std::vector<prometheus::MetricFamily> out;
  out.push_back(
      Counter("execflow_workload_paths_dropped_total",
              "Cgroups made whose path was not recorded (longer than 255 bytes, or "
              "refused by the kernel map); their workloads are named only if a walk "
              "of cgroupfs finds them.",
              static_cast<double>(__atomic_load_n(&skel_->bss->paths_dropped, __ATOMIC_RELAXED))));
  AppendProgramFamilies(&out);
  return out;
}

}  // namespace execflow
