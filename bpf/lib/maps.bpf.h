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

/*
 * Submits a ring buffer record without waking the reader unless the buffer
 * holds at least wakeup_bytes; the reader also polls on a short timeout.
 * A wakeup per record costs an interrupt and a context switch per event
 * (microseconds, far more than the program itself).
 */
static __always_inline void ringbuf_submit_batched(void *ringbuf, void *rec, __u64 wakeup_bytes)
{
	__u64 flags = bpf_ringbuf_query(ringbuf, BPF_RB_AVAIL_DATA) >= wakeup_bytes
			      ? BPF_RB_FORCE_WAKEUP
			      : BPF_RB_NO_WAKEUP;

	bpf_ringbuf_submit(rec, flags);
}

#endif /* EXECFLOW_MAPS_BPF_H */
