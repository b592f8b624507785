/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Histogram slot of a value, shared by BPF and C++. Slots round up: slot k counts values in
 * (2^(k-1), 2^k], the Prometheus bucket le = 2^k; slot 0 holds 0 and 1. BPF has no clz
 * instruction, hence the branch-free halving.
 */
#ifndef EXECFLOW_LOG2_H
#define EXECFLOW_LOG2_H

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

#define LOG2_SLOTS 64

static __always_inline __u32 log2_floor_u64(__u64 v)
{
	__u32 r, shift;

	r = (v > 0xFFFFFFFFull) << 5;
	v >>= r;
	shift = (v > 0xFFFF) << 4;
	v >>= shift;
	r |= shift;
	shift = (v > 0xFF) << 3;
	v >>= shift;
	r |= shift;
	shift = (v > 0xF) << 2;
	v >>= shift;
	r |= shift;
	shift = (v > 0x3) << 1;
	v >>= shift;
	r |= shift;
	r |= (v >> 1);
	return r;
}

/* ceil(log2(v)), 0 for v <= 1; at most 64, clamped to the last slot. */
static __always_inline __u32 log2_slot(__u64 v)
{
	__u32 k;

	if (v <= 1)
		return 0;
	k = log2_floor_u64(v - 1) + 1;
	return k < LOG2_SLOTS ? k : LOG2_SLOTS - 1;
}

#endif /* EXECFLOW_LOG2_H */
