// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Exec collector: successful execs per (cgroup, UID), failed exec attempts
 * per (cgroup, UID, errno), and one ring buffer record per successful exec.
 * The cgroup v2 id names the workload (user space resolves it to namespace,
 * pod and container).
 *
 * Hooks, each in its own SEC so user space picks one by trying
 * (bpf_program__set_autoload):
 *   successes: tp_btf/sched_process_exec, then tracepoint/sched/sched_process_exec
 *   failures:  tracepoint/syscalls/sys_exit_execve + sys_exit_execveat
 * Events go through a ring buffer, or a perf buffer where there is none.
 */
#include "lib/vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "lib/maps.bpf.h"
#include "exec.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by user space before load. */
const volatile bool targ_events = true;
const volatile __u64 targ_wakeup_bytes = EXEC_DEFAULT_RINGBUF_BYTES / 4;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EXEC_DEFAULT_MAX_UIDS);
	__type(key, struct exec_key);
	__type(value, __u64);
} exec_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EXEC_DEFAULT_MAX_FAILURE_KEYS);
	__type(key, struct exec_failure_key);
	__type(value, __u64);
} exec_failures SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, EXEC_DEFAULT_RINGBUF_BYTES);
} exec_events SEC(".maps");

/* The perf buffer transport (events.transport: perfbuf); one ring per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} exec_events_perf SEC(".maps");

struct exec_loss loss = {};

static __always_inline void fill_event(struct exec_event *e, const struct exec_key *key,
				       __u64 uid_gid, const char *filename)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	e->boot_ns = bpf_ktime_get_boot_ns();
	e->cgroup_id = key->cgroup_id;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = (__u32)uid_gid;
	e->gid = uid_gid >> 32;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), filename);
}

/*
 * filename points into kernel memory for tp_btf (bprm->filename) and into
 * the tracepoint record for the classic tracepoint; both are kernel memory.
 */
static __always_inline int handle_exec(void *ctx, const char *filename)
{
	__u64 uid_gid = bpf_get_current_uid_gid();
	struct exec_key key = {.cgroup_id = bpf_get_current_cgroup_id(), .uid = (__u32)uid_gid};
	struct exec_event *e;

	if (!counter_add(&exec_counts, &key, 1))
		__sync_fetch_and_add(&loss.uid_overflow, 1);

	if (!targ_events)
		return 0;
	if (targ_perfbuf) {
		struct exec_event ev; /* 304 bytes: fits the 512-byte stack */

		fill_event(&ev, &key, uid_gid, filename);
		if (bpf_perf_event_output(ctx, &exec_events_perf, BPF_F_CURRENT_CPU, &ev, sizeof(ev)))
			__sync_fetch_and_add(&loss.events_dropped, 1);
		return 0;
	}
	e = bpf_ringbuf_reserve(&exec_events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&loss.events_dropped, 1);
		return 0;
	}
	fill_event(e, &key, uid_gid, filename);
	ringbuf_submit_batched(&exec_events, e, targ_wakeup_bytes);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(exec_btf, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	return handle_exec(ctx, BPF_CORE_READ(bprm, filename));
}

SEC("tracepoint/sched/sched_process_exec")
int exec_tp(struct trace_event_raw_sched_process_exec *ctx)
{
	/* __data_loc: low 16 bits are the offset of the string in the record. */
	__u32 loc = BPF_CORE_READ(ctx, __data_loc_filename);

	return handle_exec(ctx, (const char *)ctx + (loc & 0xFFFF));
}

static __always_inline int handle_exec_exit(long ret)
{
	struct exec_failure_key key;

	if (ret >= 0)
		return 0;
	key.cgroup_id = bpf_get_current_cgroup_id();
	key.uid = (__u32)bpf_get_current_uid_gid();
	key.err = (__u32)-ret;
	if (!counter_add(&exec_failures, &key, 1))
		__sync_fetch_and_add(&loss.failure_overflow, 1);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_execve")
int execve_exit_tp(struct trace_event_raw_sys_exit *ctx)
{
	return handle_exec_exit(BPF_CORE_READ(ctx, ret));
}

SEC("tracepoint/syscalls/sys_exit_execveat")
int execveat_exit_tp(struct trace_event_raw_sys_exit *ctx)
{
	return handle_exec_exit(BPF_CORE_READ(ctx, ret));
}
