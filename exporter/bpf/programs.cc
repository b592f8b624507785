#include "exporter/bpf/programs.h"

#include <bpf/bpf.h>
#include <unistd.h>

#include "exporter/bpf/hooks.h"
#include "exporter/metrics/families.h"

namespace execflow {

ProgramInfo DescribeProgram(const bpf_program* prog) {
  SectionParts parts = SplitSection(bpf_program__section_name(prog));
  return {bpf_program__name(prog), parts.hook, parts.attach_type, bpf_program__fd(prog)};
}

Result<void> CheckHookExists(const bpf_program* prog) {
  const SectionParts s = SplitSection(bpf_program__section_name(prog));
  if (s.attach_type == "kprobe" || s.attach_type == "kretprobe") {
    // libbpf attaches kprobes through the kprobe PMU, else tracefs's kprobe_events.
    if (access("/sys/bus/event_source/devices/kprobe", F_OK) != 0 &&
        access("/sys/kernel/tracing/kprobe_events", F_OK) != 0 &&
        access("/sys/kernel/debug/tracing/kprobe_events", F_OK) != 0) {
      return Fail("this kernel has no kprobes (CONFIG_KPROBES is off)");
    }
    return {};
  }
  if (s.attach_type != "tracepoint") return {};
  for (const char* tracefs : {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}) {
    const std::string events = std::string(tracefs) + "/events";
    if (access(events.c_str(), F_OK) != 0) continue;
    if (access((events + "/" + s.hook).c_str(), F_OK) != 0 && errno == ENOENT) {
      return Fail("this kernel has no tracepoint " + s.hook);
    }
    return {};
  }
  return {};  // no tracefs: attaching will say so
}

Result<ProgramRunStats> ReadRunStats(int prog_fd) {
  bpf_prog_info info = {};
  __u32 len = sizeof(info);
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) < 0) {
    return Fail("read bpf program info", errno);
  }
  return ProgramRunStats{info.run_time_ns, info.run_cnt, info.recursion_misses};
}

Result<UniqueFd> EnableRunTimeStats() {
  int fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
  if (fd < 0) return Fail("enable bpf run-time stats", errno);
  return UniqueFd(fd);
}

void AppendProgramFamilies(const std::vector<ProgramInfo>& programs,
                           std::vector<prometheus::MetricFamily>* out) {
  auto info = Gauge("execflow_bpf_program_info",
                    "Attached BPF programs and the hook each uses; 1 per program.");
  auto secs = Counter("execflow_bpf_program_run_seconds_total",
                      "Time the kernel spent running the program (bpf run-time stats).");
  auto runs = Counter("execflow_bpf_program_runs_total",
                      "Times the kernel ran the program (bpf run-time stats).");
  // The kernel skips a program that would re-enter on the same CPU (an fexit
  // program preempted, a tracepoint hit from inside another program); the
  // event it would have counted is lost, so it must show somewhere.
  auto misses = Counter("execflow_bpf_program_misses_total",
                        "Runs the kernel skipped because the program was already running on "
                        "that CPU; their events are not counted.");
  for (const auto& p : programs) {
    AddGauge(info, {{"program", p.program}, {"hook", p.hook}, {"attach_type", p.attach_type}}, 1);
    auto stats = ReadRunStats(p.fd);
    if (!stats) continue;
    AddCounter(secs, {{"program", p.program}}, static_cast<double>(stats->run_time_ns) / 1e9);
    AddCounter(runs, {{"program", p.program}}, static_cast<double>(stats->run_cnt));
    AddCounter(misses, {{"program", p.program}}, static_cast<double>(stats->recursion_misses));
  }
  out->push_back(std::move(info));
  out->push_back(std::move(secs));
  out->push_back(std::move(runs));
  out->push_back(std::move(misses));
}

}  // namespace execflow
