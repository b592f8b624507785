/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Types shared by bpf/exec.bpf.c and exporter/collectors/exec_collector.cc. */
#ifndef EXECFLOW_EXEC_H
#define EXECFLOW_EXEC_H

#define EXEC_COMM_LEN 16
/* Longer paths are truncated; 256 keeps a record at 320 bytes. */
#define EXEC_FILENAME_LEN 256

/*
 * Defaults, overridden from the config before load. Each map: 10240 keys * (16 B key + 8 B
 * value + ~50 B hash overhead) is ~0.8 MiB of kernel memory. User space removes the keys of
 * cgroups that are gone, so the maps hold live workloads only.
 */
#define EXEC_DEFAULT_MAX_UIDS 10240
#define EXEC_DEFAULT_MAX_FAILURE_KEYS 10240
/*
 * 1 MiB holds ~3,190 events without arguments (320 B record + 8 B ring buffer header), ~2,910
 * of a short command line (up to 32 B) and ~1,240 of a 300-byte one: an event's arguments take
 * room rounded up to a power of two (bpf/exec.bpf.c args_room).
 */
#define EXEC_DEFAULT_RINGBUF_BYTES (1 << 20)
/*
 * The exec's arguments are copied up to events.args_max_bytes (targ_args_max), at most
 * EXEC_ARGS_MAX: Linux allows up to a quarter of the stack limit (2 MiB by default), but an
 * event is built whole in a per-CPU buffer, whose entries the kernel allows up to 32 KiB,
 * and 30 KiB of arguments are more than Falco (4 KiB), Inspektor Gadget (5 KiB) or Tracee
 * (8 KiB) keep.
 */
#define EXEC_ARGS_MAX 30720
#define EXEC_DEFAULT_ARGS_BYTES 4096
/*
 * A failed exec's arguments are read back one by one from the caller's argv, which a failed
 * exec leaves as it was: at most EXEC_FAILED_ARGV_MAX arguments and EXEC_FAILED_ARGS_MAX bytes
 * (or args_max_bytes if less), each cut at EXEC_FAILED_ARG_MAX bytes.
 */
#define EXEC_FAILED_ARGV_MAX 64
#define EXEC_FAILED_ARGS_MAX 16384
#define EXEC_FAILED_ARG_MAX 4096
/* Threads inside execve/execveat at once that the tracepoint mode follows (its sys_enter keeps the arguments). */
#define EXEC_ATTEMPTS_MAX 4096
/* args_size of a failed exec whose arguments were cut: the whole size is not known. */
#define EXEC_ARGS_SIZE_UNKNOWN 0xffffffffU

/*
 * One exec, or a failed attempt (err), as sent to user space: this record, then args_len
 * bytes of its arguments. Zero after the strings' NULs.
 */
struct exec_event {
	__u64 time_ns;     /* at the exec: CLOCK_BOOTTIME (ring buffer), CLOCK_MONOTONIC (perf buffer) */
	__u64 cgroup_id;   /* cgroup v2 id of the task */
	__u32 pid;         /* tgid */
	__u32 ppid;        /* real parent's tgid */
	__u32 uid;
	__u32 gid;
	char comm[EXEC_COMM_LEN];
	char filename[EXEC_FILENAME_LEN];
	__u32 args_size; /* bytes of the new process's whole argument area: each argument and its NUL */
	__u32 args_len;  /* bytes of it that follow the record: args_size, or less where cut (0: unreadable) */
	__u32 err;       /* a failed attempt: its positive errno (filename, args as asked); 0: an exec */
	__u32 pad;
};

/* Who exec'd: the cgroup v2 id of the task (its workload) and its real UID. */
struct exec_key {
	__u64 cgroup_id;
	__u32 uid;
	__u32 pad;
};

struct exec_failure_key {
	__u64 cgroup_id;
	__u32 uid;
	__u32 err; /* positive errno */
};

/* What could not be recorded: .bss counters, atomic adds, read by user space via mmap. */
struct exec_loss {
	__u64 events_dropped;    /* ring buffer full: event lost, exec still counted */
	__u64 uid_overflow;      /* exec_counts full: exec counted here instead */
	__u64 failure_overflow;  /* exec_failures full: failure counted here instead */
};

#endif /* EXECFLOW_EXEC_H */
