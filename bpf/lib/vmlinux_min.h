/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The few kernel types our BPF programs use, written by hand instead of a vmlinux.h dumped from
 * the build host's BTF: builds are reproducible and need no /sys/kernel/btf/vmlinux. With
 * preserve_access_index each field access is a CO-RE relocation libbpf resolves at load against
 * the running kernel's BTF: only member names and types must match, not order, offsets or sizes.
 */
#ifndef EXECFLOW_VMLINUX_MIN_H
#define EXECFLOW_VMLINUX_MIN_H

#include <linux/types.h>
#include <linux/bpf.h>

/* bpf_tracing.h picks kernel pt_regs member names when this is defined. */
#define __VMLINUX_H__

typedef int pid_t;
typedef unsigned long size_t;
typedef _Bool bool;
enum { false = 0, true = 1 };

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

typedef struct {
	__u32 val;
} kuid_t;

typedef struct {
	__u32 val;
} kgid_t;

struct cred {
	kuid_t uid;
	kgid_t gid;
};

struct cgroup;

struct css_set {
	struct cgroup *dfl_cgrp;
};

struct mm_struct {
	unsigned long arg_start, arg_end;
};

struct task_struct {
	pid_t pid;
	pid_t tgid;
	struct task_struct *real_parent;
	const struct cred *cred;
	struct css_set *cgroups;
	struct mm_struct *mm;
	char comm[16];
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

/* tracepoint/syscalls/sys_enter_* */
struct trace_event_raw_sys_enter {
	struct trace_entry ent;
	long id;
	unsigned long args[6];
};

/* tracepoint/syscalls/sys_exit_* */
struct trace_event_raw_sys_exit {
	struct trace_entry ent;
	long id;
	long ret;
};

struct in6_addr {
	union {
		__u8 u6_addr8[16];
		__be32 u6_addr32[4];
	} in6_u;
};

struct kernfs_node {
	__u64 id; /* a cgroup's id: the inode number of its cgroupfs folder */
};

struct cgroup_root {
	int hierarchy_id; /* 0: the cgroup v2 hierarchy */
};

struct cgroup {
	struct kernfs_node *kn;
	struct cgroup_root *root;
};

/* 5.15+: the cgroup of the socket's creator, always set. */
struct sock_cgroup_data {
	struct cgroup *cgroup;
};

/* Before 5.15: a union of the cgroup pointer and net_cls/net_prio data (bit 0 set). */
struct sock_cgroup_data___old {
	__u64 val;
};

struct ns_common {
	unsigned int inum;
};

struct net {
	struct ns_common ns;
};

typedef struct {
	struct net *net;
} possible_net_t;

struct sock_common {
	union {
		struct {
			__be32 skc_daddr;
			__be32 skc_rcv_saddr;
		};
	};
	union {
		struct {
			__be16 skc_dport;
			__u16 skc_num;
		};
	};
	unsigned short skc_family;
	unsigned char skc_state;
	possible_net_t skc_net;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
};

struct sock {
	struct sock_common __sk_common;
	/* Bitfields before 5.6: read with BPF_CORE_READ_BITFIELD(_PROBED). */
	__u16 sk_type;
	__u16 sk_protocol;
	struct sock_cgroup_data sk_cgrp_data;
};

struct sock___old {
	struct sock_cgroup_data___old sk_cgrp_data;
};

struct inet_sock {
	struct sock sk;
	__be16 inet_sport;
};

struct msghdr;
struct page;

/* What an iterator over a socket storage map (iter/bpf_sk_storage_map) sees of each entry. */
struct bpf_iter_meta;
struct bpf_map;
struct bpf_iter__bpf_sk_storage_map {
	struct bpf_iter_meta *meta;
	struct bpf_map *map;
	struct sock *sk;
	void *value;
};

/* tracepoint/cgroup/cgroup_mkdir (event class cgroup) */
struct trace_event_raw_cgroup {
	struct trace_entry ent;
	int root;
	int level;
	__u64 id;
	__u32 __data_loc_path;
	char __data[0];
};

/* tracepoint/sock/sock_send_length (event class sock_msg_length) */
struct trace_event_raw_sock_msg_length {
	struct trace_entry ent;
	void *sk;
	__u16 family;
	__u16 protocol;
	int ret;
	int flags;
};

/* tracepoint/sock/inet_sock_set_state */
struct trace_event_raw_inet_sock_set_state {
	struct trace_entry ent;
	const void *skaddr;
	int oldstate;
	int newstate;
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u16 protocol;
};

#if defined(__TARGET_ARCH_x86)
struct pt_regs {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8;
	unsigned long ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
};
#elif defined(__TARGET_ARCH_arm64)
struct user_pt_regs {
	__u64 regs[31];
	__u64 sp;
	__u64 pc;
	__u64 pstate;
};
struct pt_regs {
	union {
		struct user_pt_regs user_regs;
		struct {
			__u64 regs[31];
			__u64 sp;
			__u64 pc;
			__u64 pstate;
		};
	};
	__u64 orig_x0;
};
#endif

#pragma clang attribute pop

#endif /* EXECFLOW_VMLINUX_MIN_H */
