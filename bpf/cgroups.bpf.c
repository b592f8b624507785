// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Each cgroup v2 folder's path by cgroup id, recorded as it is made, so user space can name
 * a container gone before it looks (a Job, a CI step: made, one exec, removed within
 * milliseconds); cgroupfs no longer has those.
 * Hooks, one SEC each, tried in order: tp_btf/cgroup_mkdir, tracepoint/cgroup/cgroup_mkdir.
 */
#include "lib/vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "cgroups.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CGROUP_DEFAULT_MAX_PATHS);
	__type(key, __u64);
	__type(value, struct cgroup_path);
} cgroup_paths SEC(".maps");

/* Paths not recorded: too long (a cut path would name the wrong workload) or refused by the map. */
__u64 paths_dropped = 0;

/* One zeroed value to copy into: 256 bytes do not fit the stack twice. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cgroup_path);
} scratch SEC(".maps");

static __always_inline int remember(__u64 id, const char *path)
{
	__u32 zero = 0;
	struct cgroup_path *p = bpf_map_lookup_elem(&scratch, &zero);
	long len;

	if (!p)
		return 0;
	/* Zero past the NUL: the same path always gives the same bytes. */
	__builtin_memset(p->path, 0, sizeof(p->path));
	len = bpf_probe_read_kernel_str(p->path, sizeof(p->path), path);
	if (len < 0)
		return 0;
	/* Buffer full: the path may be cut; user space walks cgroupfs for it instead. */
	if (len >= (long)sizeof(p->path) || bpf_map_update_elem(&cgroup_paths, &id, p, BPF_ANY))
		__sync_fetch_and_add(&paths_dropped, 1);
	return 0;
}

/* cgroup v1 hierarchies have ids of their own: only the v2 one (hierarchy 0). */
SEC("tp_btf/cgroup_mkdir")
int BPF_PROG(cgroup_mkdir_btf, struct cgroup *cgrp, const char *path)
{
	if (cgrp->root->hierarchy_id != 0)
		return 0;
	return remember(cgrp->kn->id, path);
}

SEC("tracepoint/cgroup/cgroup_mkdir")
int cgroup_mkdir_tp(struct trace_event_raw_cgroup *ctx)
{
	if (ctx->root != 0)
		return 0;
	return remember(ctx->id, (const char *)ctx + (ctx->__data_loc_path & 0xffff));
}
