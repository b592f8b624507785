/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef EXECFLOW_MAPS_BPF_H
#define EXECFLOW_MAPS_BPF_H

#include <bpf/bpf_helpers.h>

/*
 * Adds delta to the __u64 counter at key, creating it at zero first.
 * Two CPUs may race to create the entry: the loser's BPF_NOEXIST insert
 * returns -EEXIST and it adds to the winner's entry. Returns false only when
 * the entry cannot exist (map full, -E2BIG, or out of memory), so the caller
 * can account the delta somewhere else instead of losing it.
 */
static __always_inline bool counter_add(void *map, const void *key, __u64 delta)
{
	static const __u64 zero;
	__u64 *val;
	long err;

	val = bpf_map_lookup_elem(map, key);
	if (!val) {
		err = bpf_map_update_elem(map, key, &zero, BPF_NOEXIST);
		if (err && err != -17 /* EEXIST */)
			return false;
		val = bpf_map_lookup_elem(map, key);
		if (!val)
			return false;
	}
	__sync_fetch_and_add(val, delta);
	return true;
}

#endif /* EXECFLOW_MAPS_BPF_H */
