/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef EXECFLOW_MAPS_BPF_H
#define EXECFLOW_MAPS_BPF_H

#include <asm-generic/errno-base.h>
#include <bpf/bpf_helpers.h>

/*
 * lookup_or_init: the value at key, created from `init` if absent; counter_add: adds delta to
 * the __u64 at key, created at zero. If two CPUs race to create it, the loser's BPF_NOEXIST
 * insert gets -EEXIST and it uses the winner's entry. Both fail only when the entry cannot
 * exist (map full: -E2BIG, or out of memory), so the caller counts the delta elsewhere.
 */
static __always_inline void *lookup_or_init(void *map, const void *key, const void *init)
{
	void *val;
	int err; /* int, as bcc: before 6.4 the update's result may lack sign extension, so a long misses -EEXIST */

	val = bpf_map_lookup_elem(map, key);
	if (val)
		return val;
	err = bpf_map_update_elem(map, key, init, BPF_NOEXIST);
	if (err && err != -EEXIST)
		return 0;
	return bpf_map_lookup_elem(map, key);
}

static __always_inline bool counter_add(void *map, const void *key, __u64 delta)
{
	static const __u64 zero;
	__u64 *val = lookup_or_init(map, key, &zero);

	if (!val)
		return false;
	__sync_fetch_and_add(val, delta);
	return true;
}

/*
 * Event transport, set by user space before load (events.transport): ring buffer (5.8+), else
 * perf buffer. The verifier resolves branches on this constant, so the other transport's helpers
 * are never verified; without ring buffers, user space makes that map a one-entry array.
 */
const volatile bool targ_perfbuf = false;

#endif /* EXECFLOW_MAPS_BPF_H */
