/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Types shared by bpf/tcp.bpf.c and exporter/collectors/tcp_collector.cc. */
#ifndef EXECFLOW_TCP_H
#define EXECFLOW_TCP_H

#include "lib/log2.h"

/*
 * Defaults, overridden from the config before load.
 * Flows: 65536 * (56 B key + 24 B value + ~64 B preallocated htab element) is ~9 MiB.
 * In-flight kprobe calls: a thread inside one, or whose return was missed (until it calls or exits).
 * Close notices: 256 KiB / (56 B + 8 B header) holds 4,096 closes between wake-ups.
 * Socket storage mode: one tcp_sock_bytes (72 B, plus the kernel's ~100 B per element) per
 * socket that sent or received while attached, freed with the socket: no size to set.
 */
#define TCP_DEFAULT_MAX_FLOWS 65536
#define TCP_MAX_INFLIGHT_SENDS 16384
#define TCP_DEFAULT_CLOSED_RINGBUF_BYTES (256 * 1024)

/* How the socket opened, seen as it did: connect (out), accept (in), before attach (unknown). */
#define TCP_DIR_UNKNOWN 0
#define TCP_DIR_OUT 1
#define TCP_DIR_IN 2

/* The exporter's own listening ports: their connections are not flows. */
#define TCP_MAX_OWN_PORTS 4

#define EXECFLOW_AF_INET 2
#define EXECFLOW_AF_INET6 10

/* One TCP flow as the local socket sees it. IPv4 addresses use the first 4 bytes. */
struct tcp_flow_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport; /* host byte order */
	__u16 dport; /* host byte order */
	__u16 family; /* AF_INET or AF_INET6 */
	__u16 direction; /* TCP_DIR_*: only when user space asks for it (targ_direction), else 0 */
	__u32 netns;     /* netns inode: keeps two pods' identical loopback 4-tuples apart */
	__u32 pad2;
	__u64 cgroup_id; /* cgroup v2 id of the socket's creator (its workload) */
};

/* What a flow sent and received, in bytes accepted by send calls and copied by receive calls. */
struct tcp_flow_bytes {
	__u64 sent;
	__u64 received;
	__u64 closed; /* nonzero once the socket reached TCP_CLOSE: user space deletes it */
};

/*
 * Socket storage mode: a socket's bytes not yet moved to its flow's entry (tcp_flow_bytes).
 * Receives may run on another CPU than sends: their counter is 64 bytes further on, so never in
 * the same cache line.
 */
struct tcp_sock_bytes {
	__u64 sent;
	__u64 pad[7];
	__u64 received;
};

/* Bytes per send call: LOG2_SLOTS round-up slots plus their sum. Per CPU. */
struct tcp_send_hist {
	__u64 slots[LOG2_SLOTS];
	__u64 sum;
};

/* Sent when a socket reaches TCP_CLOSE: user space reads the flow's final total and deletes it
 * (lookup-and-delete). A lost notice loses nothing: scrapes also delete flows marked closed. */
struct tcp_close_event {
	struct tcp_flow_key key;
};

/* What could not be recorded per flow; .bss, atomic adds. */
struct tcp_loss {
	__u64 overflow_bytes;       /* flow map full: bytes sent counted here instead */
	__u64 overflow_sends;       /* ... and the inserts that failed for them (sends; moves in socket storage mode) */
	__u64 overflow_received;    /* flow map full: bytes received counted here instead */
	__u64 close_events_dropped; /* close notice lost: the next scrape deletes the flow instead */
	__u64 inflight_full;        /* kprobe mode: tcp_send_args full, the send is not counted */
	__u64 kretprobe_missed;     /* kprobe mode: a send whose return the kretprobe missed */
	__u64 recv_inflight_full;   /* kprobe mode: tcp_recv_args full, the receive is not counted */
	__u64 recv_kretprobe_missed; /* kprobe mode: a receive whose return the kretprobe missed */
};

#endif /* EXECFLOW_TCP_H */
