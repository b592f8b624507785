/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef EXECFLOW_MAPS_BPF_H
#define EXECFLOW_MAPS_BPF_H

#include <asm-generic/errno-base.h>
#include <bpf/bpf_helpers.h>

/*
 * The value at key, created from `init` first if absent (lookup_or_init), and
 * counter_add: adds delta to the __u64 counter at key, created at zero.
 * Two CPUs may race to create the entry: the loser's BPF_NOEXIST insert
 * returns -EEXIST and it adds to the winner's entry. Returns false only when
 * the entry cannot exist (map full, -E2BIG, or out of memory), so the caller
 * can account the delta somewhere else instead of losing it.
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
 * Event transport, chosen by user space before load (events.transport):
 * a BPF ring buffer (5.8+), or a perf buffer where the kernel has none. The
 * branch on this rodata constant is resolved by the verifier, so the unused
 * transport's helper calls are never verified (user space turns the unused
 * ring buffer map into a one-entry array on kernels without ring buffers).
 */
const volatile bool targ_perfbuf = false;

#endif /* EXECFLOW_MAPS_BPF_H */
