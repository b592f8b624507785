#pragma once

#include <bpf/libbpf.h>

#include <cstdint>
#include <string>
#include <vector>

#include "exporter/common/unique_fd.h"
#include "exporter/common/result.h"

namespace execflow {

// What one attached program is, for execflow_bpf_program_info and the log.
struct ProgramInfo {
  std::string program;      // BPF program name
  std::string hook;         // "sched_process_exec", "sched/sched_process_exec"
  std::string attach_type;  // "tp_btf", "tracepoint", "fexit", "kprobe", ...
  int fd = -1;
};

ProgramInfo DescribeProgram(const bpf_program* prog);

// Names what this kernel lacks for `prog` before loading (clearer than the CO-RE or attach
// failure): a tracepoint tracefs does not list, kprobes on a kernel without them. Load
// and attach decide the rest.
Result<void> CheckHookExists(const bpf_program* prog);

// Kernel run-time stats of a program (zero unless stats are enabled).
struct ProgramRunStats {
  uint64_t run_time_ns = 0;
  uint64_t run_cnt = 0;
  uint64_t recursion_misses = 0;  // runs the kernel skipped (always counted)
};
Result<ProgramRunStats> ReadRunStats(int prog_fd);

// kernel.bpf_stats_enabled on while the fd lives (BPF_ENABLE_STATS): off when we stop.
Result<UniqueFd> EnableRunTimeStats();

}  // namespace execflow
