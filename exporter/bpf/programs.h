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

// An error naming what this kernel lacks for `prog`, found before loading it
// (clearer than the CO-RE or attach failure it would give): a classic
// tracepoint that tracefs does not list, kprobes on a kernel without them.
// Everything else passes; loading and attaching are the real test.
Result<void> CheckHookExists(const bpf_program* prog);

// Kernel run-time stats of a program (zero unless stats are enabled).
struct ProgramRunStats {
  uint64_t run_time_ns = 0;
  uint64_t run_cnt = 0;
  uint64_t recursion_misses = 0;  // runs the kernel skipped (always counted)
};
Result<ProgramRunStats> ReadRunStats(int prog_fd);

// Turns on kernel.bpf_stats_enabled for as long as the returned fd lives
// (BPF_ENABLE_STATS), so stopping the exporter turns it back off.
Result<UniqueFd> EnableRunTimeStats();

}  // namespace execflow
