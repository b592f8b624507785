// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The floor of each hook (issue 12): programs that do nothing, on the hooks
 * execflow's own programs use. What the kernel's run-time stats report for
 * them is what any program there costs before its first instruction:
 * dispatch, the stats' own clock reads. execflow_bench_load empty loads and
 * attaches each one on its own, so one the kernel refuses (fexit here) is
 * reported and the others still run.
 */
#include "../../bpf/lib/vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include "../../bpf/exec.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tp_btf/sched_process_exec")
int floor_exec_btf(void *ctx)
{
	return 0;
}

/*
 * The exec event's transport and nothing else: a record of exec_event's size
 * reserved in a ring buffer and submitted without a wakeup, as exec_btf does
 * (execflow_bench_load empty polls it empty, as the exporter does).
 */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, EXEC_DEFAULT_RINGBUF_BYTES);
} floor_events SEC(".maps");

SEC("tp_btf/sched_process_exec")
int floor_event_btf(void *ctx)
{
	void *e = bpf_ringbuf_reserve(&floor_events, sizeof(struct exec_event), 0);

	if (e)
		bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	return 0;
}

SEC("tp_btf/sock_send_length")
int floor_send_btf(void *ctx)
{
	return 0;
}

#if defined(__TARGET_ARCH_x86)
#define SYSCALL_FN(name) "__x64_sys_" #name
#elif defined(__TARGET_ARCH_arm64)
#define SYSCALL_FN(name) "__arm64_sys_" #name
#endif

SEC("fexit/" SYSCALL_FN(execve))
int floor_execve_fx(void *ctx)
{
	return 0;
}

SEC("fexit/tcp_sendmsg")
int floor_send_fx(void *ctx)
{
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_execve")
int floor_execve_tp(void *ctx)
{
	return 0;
}
