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
#include <bpf/bpf_tracing.h>
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

SEC("tp_btf/sock_recv_length")
int floor_recv_btf(void *ctx)
{
	return 0;
}

/*
 * Not a floor but a yardstick (issue 22): what counting a send's bytes in the socket's own
 * storage costs, with no flow key, no hash lookup and no histogram: the least a per-socket
 * counter can cost on this hook. 5.11+ (socket storage in tracing programs).
 */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} floor_sock_bytes SEC(".maps");

SEC("tp_btf/sock_send_length")
int BPF_PROG(floor_send_sk_btf, struct sock *sk, int ret, int flags)
{
	__u64 *sent;

	if (ret <= 0)
		return 0;
	sent = bpf_sk_storage_get(&floor_sock_bytes, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (sent)
		__sync_fetch_and_add(sent, ret);
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
