/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef EXECFLOW_MAPS_BPF_H
#define EXECFLOW_MAPS_BPF_H

#include <asm-generic/errno-base.h>
#include <bpf/bpf_helpers.h>

/*
 * Adds delta to the __u64 counter at key, creating it at zero first.
 * Two CPUs may race to create the entry: the loser's BPF_NOEXIST insert
 * returns -EEXIST and it adds to the winner's entry. Returns false only when
 * the entry cannot exist (map full, -E2BIG, or out of memory), so the caller
 * can account the delta somewhere else instead of losing it.
 *
 * err is an int, as in bcc's maps.bpf.h: before 6.4 the update helper
 * returns the map op's int without sign extension, so a long holding -EEXIST
 * would compare unequal to -EEXIST and a lost race would look like a full map.
 */
static __always_inline bool counter_add(void *map, const void *key, __u64 delta)
{
	static const __u64 zero;
	__u64 *val;
	int err;

	val = bpf_map_lookup_elem(map, key);
	if (!val) {
		err = bpf_map_update_elem(map, key, &zero, BPF_NOEXIST);
		if (err && err != -EEXIST)
			return false;
		val = bpf_map_lookup_elem(map, key);
		if (!val)
			return false;
	}
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
