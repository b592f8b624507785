/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The few kernel types execflow's BPF programs touch, declared by hand
 * instead of a vmlinux.h dumped from the build host's BTF.
 *
 * Every struct carries preserve_access_index, so each field access is a CO-RE
 * relocation that libbpf resolves against the running kernel's BTF at load
 * time: member order, offsets and sizes here do not have to match any kernel,
 * only member names and types do. This keeps builds reproducible and lets
 * them run on hosts (builders, containers) without /sys/kernel/btf/vmlinux.
 */
#ifndef EXECFLOW_VMLINUX_MIN_H
#define EXECFLOW_VMLINUX_MIN_H

#include <linux/types.h>
#include <linux/bpf.h>

/* bpf_tracing.h picks kernel pt_regs member names when this is defined. */
#define __VMLINUX_H__

typedef int pid_t;
typedef _Bool bool;
enum { false = 0, true = 1 };

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct task_struct {
	pid_t pid;
	pid_t tgid;
	struct task_struct *real_parent;
};

struct linux_binprm {
	const char *filename;
};

struct trace_entry {
	unsigned short type;
	unsigned char flags;
	unsigned char preempt_count;
	int pid;
};

/* tracepoint/sched/sched_process_exec */
struct trace_event_raw_sched_process_exec {
	struct trace_entry ent;
	__u32 __data_loc_filename;
	pid_t pid;
	pid_t old_pid;
	char __data[0];
};

/* tracepoint/syscalls/sys_exit_* */
struct trace_event_raw_sys_exit {
	struct trace_entry ent;
	long id;
	long ret;
};

#pragma clang attribute pop

#endif /* EXECFLOW_VMLINUX_MIN_H */
