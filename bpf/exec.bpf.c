// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Exec collector: successful execs per (cgroup v2 id, UID), failed ones per (cgroup, UID, errno),
 * and an event per exec and per failed attempt (ring buffer, or perf buffer where there is none).
 * Hooks, one SEC each, tried in order by user space (bpf_program__set_autoload):
 *   successes: tp_btf/sched_process_exec, then tracepoint/sched/sched_process_exec
 *   failures:  fexit/__x64_sys_execve + __x64_sys_execveat, then
 *              tracepoint/syscalls/sys_enter_execve + sys_enter_execveat (the arguments asked
 *              for, kept for the exit) and sys_exit_execve + sys_exit_execveat
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
const volatile __u32 targ_args_max = EXEC_DEFAULT_ARGS_BYTES; /* at most EXEC_ARGS_MAX */
const volatile bool targ_failure_events = true; /* events.failed_execs, with targ_events */

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

/*
 * A failed exec's event (whose arguments' length is known only once they are read), and every
 * event sent through the perf buffer, is built here, then copied to the buffer at its length.
 */
struct exec_record {
	struct exec_event e;
	char args[EXEC_ARGS_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_record);
} exec_scratch SEC(".maps");

/* Who exec'd: what the counts are keyed by and the event carries. */
struct exec_who {
	__u64 cgroup_id;
	__u32 pid, ppid, uid, gid;
};

/*
 * tp_btf's task pointer is trusted: plain CO-RE loads, no helper calls (tens of ns each with
 * speculation mitigations). Same values: task->cred is current_cred(), dfl_cgrp the v2 cgroup.
 */
static __always_inline void who_trusted(struct task_struct *t, struct exec_who *w)
{
	w->cgroup_id = t->cgroups->dfl_cgrp->kn->id;
	w->pid = t->tgid;
	w->ppid = t->real_parent->tgid;
	w->uid = t->cred->uid.val;
	w->gid = t->cred->gid.val;
}

/* The classic tracepoint: the current task through helpers and probe reads. */
static __always_inline void who_current(struct exec_who *w)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 uid_gid = bpf_get_current_uid_gid();

	w->cgroup_id = bpf_get_current_cgroup_id();
	w->pid = bpf_get_current_pid_tgid() >> 32;
	w->ppid = BPF_CORE_READ(task, real_parent, tgid);
	w->uid = (__u32)uid_gid;
	w->gid = uid_gid >> 32;
}

/*
 * Top bit of the first zero byte of 8 string bytes (little endian), or 0: the lowest set bit of
 * (w - 0x01..) & ~w & 0x80.. (borrows set only higher bits). (bit >> 7) - 1 keeps the bytes before.
 */
static __always_inline __u64 first_nul_bit(__u64 w)
{
	__u64 z = (w - 0x0101010101010101ULL) & ~w & 0x8080808080808080ULL;

	return z & -z;
}

/*
 * A task's comm by plain loads (tp_btf), zeroed after the NUL: older kernels (5.10) set comm with
 * strlcpy, which leaves a longer old name's tail there (bpf_get_current_comm zero-pads itself).
 */
static __always_inline void copy_comm(char *dst, const char *comm)
{
	__u64 w[2], nul;

	__builtin_memcpy(w, comm, sizeof(w));
	nul = first_nul_bit(w[0]);
	if (nul) {
		w[0] &= (nul >> 7) - 1;
		w[1] = 0;
	} else {
		nul = first_nul_bit(w[1]);
		if (nul)
			w[1] &= (nul >> 7) - 1;
	}
	__builtin_memcpy(dst, w, sizeof(w));
}

/*
 * The new process's arguments, as the exec left them at the bottom of its stack: from
 * mm->arg_start to mm->arg_end, each NUL-terminated. args_size: their whole size;
 * args_to_copy: how many bytes of them to copy, up to targ_args_max.
 */
static __always_inline __u64 args_size(unsigned long start, unsigned long end)
{
	return end > start ? end - start : 0;
}

static __always_inline __u32 args_to_copy(__u64 size)
{
	__u32 len = size < targ_args_max ? size : targ_args_max;

	if (len > EXEC_ARGS_MAX) /* for the verifier: targ_args_max is at most that */
		len = EXEC_ARGS_MAX;
	return len;
}

/*
 * Copies `len` bytes of arguments (args_to_copy) to `args`, right after the event `e`; returns
 * how many. Nothing is copied if the area cannot be read.
 */
static __always_inline __u32 copy_args(struct exec_event *e, char *args, __u64 len, unsigned long start,
				       __u64 size)
{
	e->args_size = size < 0xffffffffULL ? size : 0xffffffffU;
	if (len == 0 || bpf_probe_read_user(args, len, (const void *)start))
		len = 0;
	e->args_len = len;
	return len;
}

/*
 * Fills a zeroed record but its file name (no old stack or record bytes may follow the strings);
 * a non-null `task` (tp_btf) gives comm by plain loads. Perf buffer kernels (before 5.8) lack
 * bpf_ktime_get_boot_ns too, so that path stamps CLOCK_MONOTONIC; user space converts with the
 * clock of the transport.
 */
static __always_inline void fill_event(struct exec_event *e, const struct exec_who *w,
				       struct task_struct *task)
{
	e->time_ns = targ_perfbuf ? bpf_ktime_get_ns() : bpf_ktime_get_boot_ns();
	e->cgroup_id = w->cgroup_id;
	e->pid = w->pid;
	e->ppid = w->ppid;
	e->uid = w->uid;
	e->gid = w->gid;
	/* The 5.10 and 6.1 verifiers keep exec_btf's dead helper branch; 6.12's drops it (a bool cost 6.12 a spill) */
	if (task)
		copy_comm(e->comm, task->comm);
	else
		bpf_get_current_comm(e->comm, sizeof(e->comm));
}

/* The record and `len` bytes of arguments to user space, or counted as dropped. */
static __always_inline void send_event(void *ctx, struct exec_record *r, __u32 len)
{
	long err;

	if (len > EXEC_ARGS_MAX) /* the verifier loses the callers' bound on older kernels */
		len = EXEC_ARGS_MAX;
	if (targ_perfbuf)
		err = bpf_perf_event_output(ctx, &exec_events_perf, BPF_F_CURRENT_CPU, r, sizeof(r->e) + len);
	else /* the reader polls: see EventConsumer */
		err = bpf_ringbuf_output(&exec_events, r, sizeof(r->e) + len, BPF_RB_NO_WAKEUP);
	if (err)
		__sync_fetch_and_add(&loss.events_dropped, 1);
}

/*
 * The room for `len` bytes of arguments in a ring buffer record: the ring buffer reserves only
 * sizes the verifier knows, so `len` rounded up to a power of two, 32 bytes at least; user space
 * reads args_len bytes of it. The event is then written where it lies in the ring: built in
 * exec_scratch and copied, it took about 270 ns more per exec (docs/profiles.md). One branch
 * per step: a constant on each path the verifier follows.
 */
_Static_assert(EXEC_ARGS_MAX <= 32768, "args_room's last step holds every length");

static __always_inline __u64 args_room(__u64 len)
{
	__u64 room = 32768;

	if (len <= 32)
		room = 32;
	else if (len <= 64)
		room = 64;
	else if (len <= 128)
		room = 128;
	else if (len <= 256)
		room = 256;
	else if (len <= 512)
		room = 512;
	else if (len <= 1024)
		room = 1024;
	else if (len <= 2048)
		room = 2048;
	else if (len <= 4096)
		room = 4096;
	else if (len <= 8192)
		room = 8192;
	else if (len <= 16384)
		room = 16384;
	return room;
}

/*
 * filename is kernel memory either way: bprm->filename (tp_btf) or in the tracepoint record;
 * args_start and args_end bound the new process's arguments in its memory.
 */
static __always_inline int handle_exec(void *ctx, const struct exec_who *w, const char *filename,
				       struct task_struct *task, unsigned long args_start,
				       unsigned long args_end)
{
	struct exec_key key = {.cgroup_id = w->cgroup_id, .uid = w->uid};
	struct exec_record *r = NULL;
	struct exec_event *e;
	char *args;
	__u64 size, len, room; /* 64-bit: a 32-bit len's zero-extension would hide its bound from the verifier */
	__u32 zero = 0;

	if (!counter_add(&exec_counts, &key, 1))
		__sync_fetch_and_add(&loss.uid_overflow, 1);

	if (!targ_events)
		return 0;
	size = args_size(args_start, args_end);
	len = args_to_copy(size);
	if (!targ_perfbuf) {
		room = args_room(len);
		e = bpf_ringbuf_reserve(&exec_events, sizeof(*e) + room, 0);
		if (!e) {
			__sync_fetch_and_add(&loss.events_dropped, 1);
			return 0;
		}
		/*
		 * len fits room. Said again for verifiers (5.10, 6.1) that know room on each path but
		 * lose len's bound: 1 + (len - 1) % room, as a mask they follow (room: a power of two).
		 */
		barrier_var(len);
		if (len)
			len = ((len - 1) & (room - 1)) + 1;
		args = (char *)(e + 1);
	} else {
		r = bpf_map_lookup_elem(&exec_scratch, &zero);
		if (!r)
			return 0;
		e = &r->e;
		args = r->args;
	}
	/* The fixed part whole: 38 stores, less than a helper or a loop over the strings' tails. */
	__builtin_memset(e, 0, sizeof(*e));
	fill_event(e, w, task);
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), filename);
	len = copy_args(e, args, len, args_start, size);
	if (targ_perfbuf)
		send_event(ctx, r, len);
	else
		bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP); /* the reader polls: see EventConsumer */
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(exec_btf, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct exec_who w;

	who_trusted(p, &w);
	return handle_exec(ctx, &w, bprm->filename, p, p->mm->arg_start, p->mm->arg_end);
}

SEC("tracepoint/sched/sched_process_exec")
int exec_tp(struct trace_event_raw_sched_process_exec *ctx)
{
	/* __data_loc: low 16 bits are the offset of the string in the record. */
	__u32 loc = BPF_CORE_READ(ctx, __data_loc_filename);

	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct exec_who w;

	who_current(&w);
	return handle_exec(ctx, &w, (const char *)ctx + (loc & 0xFFFF), 0, BPF_CORE_READ(task, mm, arg_start),
			   BPF_CORE_READ(task, mm, arg_end));
}

/*
 * A failed attempt's arguments, read back from the caller's argv (user memory, left as it was):
 * each string after the last, up to targ_args_max bytes. Returns the bytes read; sets args_size
 * to them, or to EXEC_ARGS_SIZE_UNKNOWN where something was cut or could not be read.
 */
_Static_assert(EXEC_FAILED_ARGS_MAX - 1 + 2 * EXEC_FAILED_ARG_MAX - 1 <= EXEC_ARGS_MAX, "masked reads fit args");

static __always_inline __u32 copy_failed_args(struct exec_record *r, const char *const *argv)
{
	__u32 off = 0, room;
	const char *arg;
	__u64 empty;
	long n;
	int i;

	r->e.args_size = 0;
	if (!argv)
		return 0; /* no arguments (Linux allows a null argv) */
	r->e.args_size = EXEC_ARGS_SIZE_UNKNOWN;
#pragma clang loop unroll(disable)
	for (i = 0; i < EXEC_FAILED_ARGV_MAX; i++) {
		if (bpf_probe_read_user(&arg, sizeof(arg), &argv[i]))
			break;
		if (!arg) {
			r->e.args_size = off; /* all of them */
			break;
		}
		if (off >= targ_args_max || off >= EXEC_FAILED_ARGS_MAX)
			break;
		room = targ_args_max - off;
		if (room > EXEC_FAILED_ARG_MAX)
			room = EXEC_FAILED_ARG_MAX;
		/*
		 * Masks the verifier follows on every kernel: off + room stays inside args. clang,
		 * proving them no-ops, would drop them; barrier_var() keeps them (as in tcp.bpf.c).
		 */
		barrier_var(off);
		barrier_var(room);
		n = bpf_probe_read_user_str(r->args + (off & (EXEC_FAILED_ARGS_MAX - 1)),
					    room & (2 * EXEC_FAILED_ARG_MAX - 1), arg);
		if (n < 0)
			break;
		/*
		 * An empty string: 1 (its NUL) on recent kernels, but 0 on others (6.12 here:
		 * strncpy_from_user_nofault), though they copy its NUL too. So n = max(n, 1),
		 * without a branch: with one, this host's verifier gave up at 1,000,000
		 * instructions.
		 */
		empty = n - 1;
		barrier_var(empty);
		n += empty >> 63;
		if (n > EXEC_FAILED_ARG_MAX)
			break;
		off += n;
		if (n == room) {
			char last = 1;

			/* Filled: the string ended there, or was cut (its last argument then). */
			bpf_probe_read_user(&last, 1, arg + n - 1);
			if (last)
				break;
		}
	}
	r->e.args_len = off;
	return off;
}

static __always_inline int handle_exec_exit(void *ctx, long ret, const char *filename,
					    const char *const *argv)
{
	struct exec_failure_key key;
	struct exec_record *r;
	struct exec_who w;
	__u32 zero = 0;

	if (ret >= 0)
		return 0;
	key.cgroup_id = bpf_get_current_cgroup_id();
	key.uid = (__u32)bpf_get_current_uid_gid();
	key.err = (__u32)-ret;
	if (!counter_add(&exec_failures, &key, 1))
		__sync_fetch_and_add(&loss.failure_overflow, 1);

	if (!targ_events || !targ_failure_events)
		return 0;
	r = bpf_map_lookup_elem(&exec_scratch, &zero);
	if (!r)
		return 0;
	__builtin_memset(&r->e, 0, sizeof(r->e));
	who_current(&w);
	fill_event(&r->e, &w, 0);
	r->e.err = key.err;
	if (filename)
		bpf_probe_read_user_str(r->e.filename, sizeof(r->e.filename), filename);
	send_event(ctx, r, copy_failed_args(r, argv));
	return 0;
}

/*
 * Failed execs by fexit on the syscalls: only execve pays, whereas the syscalls tracepoints
 * below put every task of the node on the slow syscall tracing path. Symbols carry an arch
 * prefix. regs are the caller's registers: what it asked for (a failed exec changes none).
 */
#if defined(__TARGET_ARCH_x86)
#define SYSCALL_FN(name) "__x64_sys_" #name
#elif defined(__TARGET_ARCH_arm64)
#define SYSCALL_FN(name) "__arm64_sys_" #name
#endif

/*
 * The caller's registers: the syscall's one argument, a struct pt_regs pointer, taken from the
 * program's context by a probe read instead of as a typed argument, which 5.10's verifier
 * refuses ("arg0 type FWD is not a struct": its BTF only declares struct pt_regs there).
 */
static __always_inline struct pt_regs *syscall_regs(unsigned long long *ctx)
{
	struct pt_regs *regs = 0;

	bpf_probe_read_kernel(&regs, sizeof(regs), ctx);
	return regs;
}

/* execve(file, argv, envp) and execveat(dirfd, file, argv, envp, flags): where file and argv are. */
static __always_inline int fexit_exec(unsigned long long *ctx, long ret, bool at)
{
	struct pt_regs *regs;

	if (ret >= 0) /* before reading the registers: most execs succeed */
		return 0;
	regs = syscall_regs(ctx);
	if (at)
		return handle_exec_exit(ctx, ret, (const char *)PT_REGS_PARM2_CORE_SYSCALL(regs),
					(const char *const *)PT_REGS_PARM3_CORE_SYSCALL(regs));
	return handle_exec_exit(ctx, ret, (const char *)PT_REGS_PARM1_CORE_SYSCALL(regs),
				(const char *const *)PT_REGS_PARM2_CORE_SYSCALL(regs));
}

SEC("fexit/" SYSCALL_FN(execve))
int BPF_PROG(execve_exit_fexit, void *unused, long ret)
{
	return fexit_exec(ctx, ret, false);
}

SEC("fexit/" SYSCALL_FN(execveat))
int BPF_PROG(execveat_exit_fexit, void *unused, long ret)
{
	return fexit_exec(ctx, ret, true);
}

/*
 * The syscall tracepoints: sys_exit has only the result, so sys_enter keeps what the call asked
 * for, by thread (task address, as bpf/tcp.bpf.c), until its exit. LRU: a thread killed inside
 * a successful exec has no exit here, and its entry is the first to go.
 */
struct exec_attempt {
	const char *filename;
	const char *const *argv;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, EXEC_ATTEMPTS_MAX);
	__type(key, __u64);
	__type(value, struct exec_attempt);
} exec_attempts SEC(".maps");

static __always_inline int exec_enter(const char *filename, const char *const *argv)
{
	struct exec_attempt a = {.filename = filename, .argv = argv};
	__u64 id = bpf_get_current_task();

	if (targ_events && targ_failure_events)
		bpf_map_update_elem(&exec_attempts, &id, &a, BPF_ANY);
	return 0;
}

static __always_inline int exec_exit_tp(void *ctx, long ret)
{
	__u64 id = bpf_get_current_task();
	struct exec_attempt *a;
	struct exec_attempt none = {};

	if (!targ_events || !targ_failure_events)
		return handle_exec_exit(ctx, ret, 0, 0);
	a = bpf_map_lookup_elem(&exec_attempts, &id);
	if (a)
		none = *a;
	if (a)
		bpf_map_delete_elem(&exec_attempts, &id);
	return handle_exec_exit(ctx, ret, none.filename, none.argv);
}

SEC("tracepoint/syscalls/sys_enter_execve")
int execve_enter_tp(struct trace_event_raw_sys_enter *ctx)
{
	return exec_enter((const char *)BPF_CORE_READ(ctx, args[0]), (const char *const *)BPF_CORE_READ(ctx, args[1]));
}

SEC("tracepoint/syscalls/sys_enter_execveat")
int execveat_enter_tp(struct trace_event_raw_sys_enter *ctx)
{
	return exec_enter((const char *)BPF_CORE_READ(ctx, args[1]), (const char *const *)BPF_CORE_READ(ctx, args[2]));
}

SEC("tracepoint/syscalls/sys_exit_execve")
int execve_exit_tp(struct trace_event_raw_sys_exit *ctx)
{
	return exec_exit_tp(ctx, BPF_CORE_READ(ctx, ret));
}

SEC("tracepoint/syscalls/sys_exit_execveat")
int execveat_exit_tp(struct trace_event_raw_sys_exit *ctx)
{
	return exec_exit_tp(ctx, BPF_CORE_READ(ctx, ret));
}
