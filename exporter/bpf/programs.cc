#include "exporter/bpf/programs.h"

#include <bpf/bpf.h>
#include <unistd.h>

#include "exporter/bpf/hooks.h"

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

}  // namespace execflow
