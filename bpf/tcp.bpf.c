// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * TCP collector: per flow, bytes accepted by send calls and copied by receive calls; a histogram
 * of bytes per send call; a notice to user space when a flow closes.
 * Hooks, one SEC each, tried in order by user space:
 *   sends:    fexit, kprobe+kretprobe on tcp_sendmsg; tp_btf, tracepoint sock/sock_send_length
 *   sendfile: fexit, kprobe+kretprobe on tcp_sendpage (before 6.5; later via tcp_sendmsg)
 *   receives: fexit (two prototypes: user space picks by BTF), kprobe+kretprobe on tcp_recvmsg;
 *             tp_btf, tracepoint sock/sock_recv_length
 *   opens (direction), closes: tp_btf, tracepoint sock/inet_sock_set_state
 *   thread exits (kprobe mode): tp_btf, tracepoint sched/sched_process_exit
 * Socket storage mode, where the kernel lets tracing programs use socket storage (5.11) and
 * has the atomic exchange (5.12): the *_sk_* programs (fexit, tp_btf) add sends and receives to
 * the socket's own storage, not to its flow's hash entry: no flow key and no hash lookup per
 * call. The close, the socket's destruction (tp_btf/tcp_destroy_sock) and every scrape (an
 * iterator over the storage) move those bytes to the flow's entry, which user space reads as in
 * the other modes. Separate programs, not a load-time switch: 5.10's verifier refuses any
 * program holding an exchange instruction, even one it would never run.
 */
#include "lib/vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "lib/maps.bpf.h"
#include "tcp.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define IPPROTO_TCP 6
#define SOCK_STREAM 1
#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_SYN_RECV 3
#define TCP_CLOSE 7

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TCP_DEFAULT_MAX_FLOWS);
	__type(key, struct tcp_flow_key);
	__type(value, struct tcp_flow_bytes);
} tcp_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tcp_send_hist);
} tcp_send_hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, TCP_DEFAULT_CLOSED_RINGBUF_BYTES);
} tcp_closed SEC(".maps");

/* The perf buffer transport (events.transport: perfbuf); one ring per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} tcp_closed_perf SEC(".maps");

/*
 * kprobe mode: the socket of each thread's tcp_sendmsg/tcp_sendpage in flight, and in a second
 * map (each direction counts its own losses) of its tcp_recvmsg. Keyed by task_struct address,
 * not thread id: a non-leader thread that execs takes the leader's id, and ids mean nothing to
 * an exporter in a PID namespace of its own (a pod).
 */
struct inflight_args {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TCP_MAX_INFLIGHT_SENDS);
	__type(key, __u64);
	__type(value, struct sock *);
};
struct inflight_args tcp_send_args SEC(".maps");
struct inflight_args tcp_recv_args SEC(".maps");

struct tcp_loss loss = {};

/* Socket storage mode: see tcp_sock_bytes. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct tcp_sock_bytes);
} tcp_sock_bytes SEC(".maps");

/*
 * How each socket was opened, by address, written as it becomes established: for all sockets
 * when tcp.labels has direction or port, else for the exporter's accepted connections. LRU: no
 * delete at close (a send may complete after it); a reused address overwrites the entry.
 */
const volatile bool targ_direction = false;

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TCP_DEFAULT_MAX_FLOWS);
	__type(key, __u64);
	__type(value, __u32);
} tcp_sock_direction SEC(".maps");

/* The exporter's ports and netns, set once it listens: its clients' connections add no series. */
__u32 own_netns = 0;
__u16 own_ports[TCP_MAX_OWN_PORTS] = {};

/*
 * A field of sk: a plain CO-RE load for tp_btf and fexit (the verifier trusts their pointer),
 * a probe read for classic tracepoints and kprobes. Callers pass a constant: one branch stays.
 */
#define SK_READ(trusted, sk, field) ((trusted) ? (sk)->field : BPF_CORE_READ(sk, field))
#define TRUSTED true
#define PROBED false

/* The `received` argument of count_bytes, remember_sock and count_remembered. */
#define SENT false
#define RECEIVED true

/* The `in_socket` argument of count_bytes and state_changed: socket storage mode, or not. */
#define IN_SOCKET true
#define IN_FLOW_MAP false

/* Cgroup v2 id from socket creation: sends and close agree, whoever runs the close (softirq on RST). */
static __always_inline __u64 sock_cgroup_id(struct sock *sk, bool trusted)
{
	__u64 val;

	if (bpf_core_field_exists(sk->sk_cgrp_data.cgroup))
		return trusted ? sk->sk_cgrp_data.cgroup->kn->id
			       : BPF_CORE_READ(sk, sk_cgrp_data.cgroup, kn, id);
	/* Before 5.15: cgroup pointer, or net_cls/net_prio data (low bits set) the kernel reads as root. */
	val = BPF_CORE_READ((struct sock___old *)sk, sk_cgrp_data.val);
	if (!val || (val & 3))
		return 1;
	return BPF_CORE_READ((struct cgroup *)val, kn, id);
}

/*
 * Local port: skc_num, but on TCP_CLOSE inet_put_port() zeroes it before the state tracepoint
 * fires, also for a send completing after the close (an RST processed while the sender slept or
 * from the backlog). inet_sport keeps it for the socket's life, but lies past struct sock,
 * where every verifier refuses plain loads: a probe read, only then.
 */
static __always_inline __u16 local_port(struct sock *sk, bool trusted)
{
	__u16 port = SK_READ(trusted, sk, __sk_common.skc_num);

	return port ? port : bpf_ntohs(BPF_CORE_READ((struct inet_sock *)sk, inet_sport));
}

static __always_inline __u32 sock_netns(struct sock *sk, bool trusted)
{
	return trusted ? sk->__sk_common.skc_net.net->ns.inum : BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

/*
 * A socket's flow key, the same for its sends, its close and its destruction, so the close
 * notice names the entry the sends made.
 */
static __always_inline bool flow_key(struct sock *sk, struct tcp_flow_key *k, bool trusted)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->family = SK_READ(trusted, sk, __sk_common.skc_family);
	if (k->family == EXECFLOW_AF_INET) {
		*(__be32 *)k->saddr = SK_READ(trusted, sk, __sk_common.skc_rcv_saddr);
		*(__be32 *)k->daddr = SK_READ(trusted, sk, __sk_common.skc_daddr);
	} else if (k->family == EXECFLOW_AF_INET6) {
		BPF_CORE_READ_INTO(&k->saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&k->daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	} else {
		return false;
	}
	k->sport = local_port(sk, trusted);
	k->dport = bpf_ntohs(SK_READ(trusted, sk, __sk_common.skc_dport));
	k->netns = sock_netns(sk, trusted);
	k->cgroup_id = sock_cgroup_id(sk, trusted);
	if (targ_direction) {
		__u64 addr = (__u64)sk;
		__u32 *dir = bpf_map_lookup_elem(&tcp_sock_direction, &addr);

		if (dir)
			k->direction = *dir;
	}
	return true;
}

/* The local port is one of the exporter's own listening ports. */
static __always_inline bool own_port(const struct tcp_flow_key *k)
{
	if (!own_netns || k->netns != own_netns)
		return false;
#pragma unroll
	for (int i = 0; i < TCP_MAX_OWN_PORTS; i++)
		if (own_ports[i] && own_ports[i] == k->sport)
			return true;
	return false;
}

/*
 * A connection the exporter's listener accepted. Not the port alone: while the exporter is down
 * (its ports stay in .bss), a client may get that number as its ephemeral port, and must count.
 */
static __always_inline bool own_connection(struct sock *sk, const struct tcp_flow_key *k)
{
	__u64 addr = (__u64)sk;
	__u32 *dir;

	if (!own_port(k))
		return false;
	dir = bpf_map_lookup_elem(&tcp_sock_direction, &addr);
	return dir && *dir == TCP_DIR_IN;
}

/* own_connection() without the rest of the flow key (socket storage mode). */
static __always_inline bool own_sock(struct sock *sk)
{
	struct tcp_flow_key k;

	if (!own_netns)
		return false;
	k.netns = sock_netns(sk, TRUSTED);
	k.sport = local_port(sk, TRUSTED);
	return own_connection(sk, &k);
}

/* SOCK_STREAM TCP: sock tracepoints also fire for raw TCP sockets. Bitfields before 5.6. */
static __always_inline bool is_tcp_stream(struct sock *sk, bool trusted)
{
	if (trusted)
		return BPF_CORE_READ_BITFIELD(sk, sk_protocol) == IPPROTO_TCP &&
		       BPF_CORE_READ_BITFIELD(sk, sk_type) == SOCK_STREAM;
	return BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol) == IPPROTO_TCP &&
	       BPF_CORE_READ_BITFIELD_PROBED(sk, sk_type) == SOCK_STREAM;
}

/* --- closes --- */

/*
 * Marks a flow closed and tells user space to read and delete it. A send completing on a closed
 * socket recreates the entry and calls this again (user space ignores notices for gone entries).
 */
static __always_inline int notify_close(void *ctx, const struct tcp_flow_key *key)
{
	struct tcp_flow_bytes *v = bpf_map_lookup_elem(&tcp_flows, key);
	struct tcp_close_event *e;

	if (!v)
		return 0; /* never sent a byte */
	/* Marked first: if the notice below is lost, a scrape still sees the close. */
	v->closed = 1;
	if (targ_perfbuf) {
		struct tcp_close_event ev = {.key = *key};

		if (bpf_perf_event_output(ctx, &tcp_closed_perf, BPF_F_CURRENT_CPU, &ev, sizeof(ev)))
			__sync_fetch_and_add(&loss.close_events_dropped, 1);
		return 0;
	}
	e = bpf_ringbuf_reserve(&tcp_closed, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&loss.close_events_dropped, 1);
		return 0;
	}
	e->key = *key;
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP); /* the reader polls: see EventConsumer */
	return 0;
}

/* --- sends and receives --- */

static const struct tcp_flow_bytes zero_bytes;

/* One send call's bytes in the histogram. */
static __always_inline void count_send_size(long ret)
{
	struct tcp_send_hist *h;
	__u32 zero = 0, slot;

	h = bpf_map_lookup_elem(&tcp_send_hist, &zero);
	if (!h)
		return;
	/*
	 * 5.10 and 6.1 need the mask (6.12+ do not): their verifiers lose slot < 64 in log2's shifts
	 * ("R2 unbounded memory access"). clang, proving it, would drop the mask; barrier_var() keeps it.
	 */
	slot = log2_slot(ret);
	barrier_var(slot);
	slot &= LOG2_SLOTS - 1;
	/* Atomic though per-CPU: preemptible fexit programs (sendmsg, sendpage) may interleave. */
	__sync_fetch_and_add(&h->slots[slot], 1);
	__sync_fetch_and_add(&h->sum, ret);
}

/* Bytes added to a flow's entry; the map full, to the overflow counters. */
static __always_inline void add_to_flow(const struct tcp_flow_key *key, __u64 sent, __u64 received)
{
	struct tcp_flow_bytes *v = lookup_or_init(&tcp_flows, key, &zero_bytes);

	/*
	 * Each add only where its value is not 0: clang makes an atomic add of a constant 0 an
	 * atomic or, which verifiers before 5.12 refuse in any program that holds one.
	 */
	if (!v) {
		if (sent) {
			__sync_fetch_and_add(&loss.overflow_bytes, sent);
			__sync_fetch_and_add(&loss.overflow_sends, 1);
		}
		if (received)
			__sync_fetch_and_add(&loss.overflow_received, received);
		return;
	}
	if (sent)
		__sync_fetch_and_add(&v->sent, sent);
	if (received)
		__sync_fetch_and_add(&v->received, received);
}

/*
 * Socket storage mode: moves the bytes a socket holds to its flow's entry. Each counter is
 * exchanged for zero, so two moves at once (a scrape's and the close's) take each byte once, and
 * a call adding meanwhile leaves its bytes for the next move.
 */
static __always_inline void move_to_flow(struct tcp_sock_bytes *b, const struct tcp_flow_key *key)
{
	__u64 sent = b->sent ? __sync_lock_test_and_set(&b->sent, 0) : 0;
	__u64 received = b->received ? __sync_lock_test_and_set(&b->received, 0) : 0;

	if (sent || received)
		add_to_flow(key, sent, received);
}

/*
 * A call completing on a closed socket (an RST processed while it slept) notifies the close
 * again. Socket storage mode (tracing programs only: `trusted`) counts in the socket's storage,
 * or in the flow's entry if there is none (out of memory).
 */
static __always_inline int count_bytes(void *ctx, struct sock *sk, long ret, bool received,
				       bool trusted, bool in_socket)
{
	struct tcp_sock_bytes *b = 0;
	struct tcp_flow_key key;

	if (ret <= 0)
		return 0;
	if (in_socket) {
		if (own_sock(sk))
			return 0;
		b = bpf_sk_storage_get(&tcp_sock_bytes, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	}
	if (b) {
		if (!received)
			count_send_size(ret);
		__sync_fetch_and_add(received ? &b->received : &b->sent, ret);
		if (sk->__sk_common.skc_state != TCP_CLOSE || !flow_key(sk, &key, TRUSTED))
			return 0;
		move_to_flow(b, &key);
		return notify_close(ctx, &key);
	}
	if (!flow_key(sk, &key, trusted) || (!in_socket && own_connection(sk, &key)))
		return 0;
	if (!received)
		count_send_size(ret);
	add_to_flow(&key, received ? 0 : ret, received ? ret : 0);
	if (SK_READ(trusted, sk, __sk_common.skc_state) == TCP_CLOSE)
		notify_close(ctx, &key);
	return 0;
}

/* --- sends: fexit --- */

SEC("fexit/tcp_sendmsg")
int BPF_PROG(tcp_sendmsg_fexit, struct sock *sk, struct msghdr *msg, size_t size, int ret)
{
	return count_bytes(ctx, sk, ret, SENT, TRUSTED, IN_FLOW_MAP);
}

SEC("fexit/tcp_sendpage")
int BPF_PROG(tcp_sendpage_fexit, struct sock *sk, struct page *page, int offset, size_t size,
	     int flags, int ret)
{
	return count_bytes(ctx, sk, ret, SENT, TRUSTED, IN_FLOW_MAP);
}

/* --- sends: kprobe + kretprobe --- */

/*
 * A kretprobe follows a bounded number of calls at once (maxactive: max(10, 2 * CPUs) for
 * libbpf's perf kprobes) and misses the returns beyond. Such a call's entry stays here until the
 * thread enters again or exits (forget_exiting_thread), so every lost call is counted.
 */
static __always_inline int remember_sock(struct sock *sk, bool received)
{
	void *args = received ? (void *)&tcp_recv_args : (void *)&tcp_send_args;
	__u64 id = bpf_get_current_task();
	int err; /* int, not long: see lookup_or_init (kernels before 6.4) */

	err = bpf_map_update_elem(args, &id, &sk, BPF_NOEXIST);
	if (err == -EEXIST) {
		__sync_fetch_and_add(received ? &loss.recv_kretprobe_missed : &loss.kretprobe_missed, 1);
		err = bpf_map_update_elem(args, &id, &sk, BPF_EXIST);
	}
	if (err) /* this call is lost */
		__sync_fetch_and_add(received ? &loss.recv_inflight_full : &loss.inflight_full, 1);
	return 0;
}

/* A null socket: a call not to count (a MSG_PEEK receive). */
static __always_inline int count_remembered(void *ctx, long ret, bool received)
{
	void *args = received ? (void *)&tcp_recv_args : (void *)&tcp_send_args;
	__u64 id = bpf_get_current_task();
	struct sock **skp = bpf_map_lookup_elem(args, &id);

	if (!skp)
		return 0;
	if (*skp)
		count_bytes(ctx, *skp, ret, received, PROBED, IN_FLOW_MAP);
	bpf_map_delete_elem(args, &id);
	return 0;
}

SEC("kprobe/tcp_sendmsg")
int BPF_KPROBE(tcp_sendmsg_kprobe, struct sock *sk)
{
	return remember_sock(sk, SENT);
}

SEC("kretprobe/tcp_sendmsg")
int BPF_KRETPROBE(tcp_sendmsg_kretprobe, int ret)
{
	return count_remembered(ctx, ret, SENT);
}

SEC("kprobe/tcp_sendpage")
int BPF_KPROBE(tcp_sendpage_kprobe, struct sock *sk)
{
	return remember_sock(sk, SENT);
}

SEC("kretprobe/tcp_sendpage")
int BPF_KRETPROBE(tcp_sendpage_kretprobe, int ret)
{
	return count_remembered(ctx, ret, SENT);
}

/*
 * kprobe mode: an exiting thread is inside no call, so an entry it still has is a missed return:
 * deleted and counted here (sched_process_exit fires once per thread, in it). Both maps: one no
 * chosen mode uses holds a single entry and stays empty, so deleting from it just fails.
 */
static __always_inline int forget_exiting_thread(void)
{
	__u64 id = bpf_get_current_task();

	if (!bpf_map_delete_elem(&tcp_send_args, &id))
		__sync_fetch_and_add(&loss.kretprobe_missed, 1);
	if (!bpf_map_delete_elem(&tcp_recv_args, &id))
		__sync_fetch_and_add(&loss.recv_kretprobe_missed, 1);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(thread_exit_btf)
{
	return forget_exiting_thread();
}

SEC("tracepoint/sched/sched_process_exit")
int thread_exit_tp(void *ctx)
{
	return forget_exiting_thread();
}

/*
 * --- receives ---
 * tcp_recvmsg returns the bytes copied to the caller. MSG_PEEK copies without consuming: not
 * counted (the read that follows is). 5.19 dropped its nonblock argument, moving flags from the
 * 5th argument to the 4th; fexit has a program per prototype, loaded as the kernel's BTF shows.
 */
#define MSG_PEEK 2

static __always_inline int count_received(void *ctx, struct sock *sk, int flags, int ret, bool in_socket)
{
	if (flags & MSG_PEEK)
		return 0;
	return count_bytes(ctx, sk, ret, RECEIVED, TRUSTED, in_socket);
}

/* 5.19+. An older kernel would load it too, reading addr_len as ret: hence BTF, not trying. */
SEC("fexit/tcp_recvmsg")
int BPF_PROG(tcp_recvmsg_fexit, struct sock *sk, struct msghdr *msg, size_t len, int flags,
	     int *addr_len, int ret)
{
	return count_received(ctx, sk, flags, ret, IN_FLOW_MAP);
}

/* 7.2 (sid): addr_len is gone, so ret is in the 5th slot. */
SEC("fexit/tcp_recvmsg")
int BPF_PROG(tcp_recvmsg_noaddr_fexit, struct sock *sk, struct msghdr *msg, size_t len, int flags,
	     int ret)
{
	return count_received(ctx, sk, flags, ret, IN_FLOW_MAP);
}

/* Before 5.19. Later verifiers refuse it: their tcp_recvmsg has no 7th slot. */
SEC("fexit/tcp_recvmsg")
int BPF_PROG(tcp_recvmsg_nonblock_fexit, struct sock *sk, struct msghdr *msg, size_t len,
	     int nonblock, int flags, int *addr_len, int ret)
{
	return count_received(ctx, sk, flags, ret, IN_FLOW_MAP);
}

/* Set by user space from the running kernel's BTF: tcp_recvmsg has nonblock (before 5.19). */
const volatile bool targ_recvmsg_nonblock_arg = false;

/*
 * A kprobe reads registers, so one program serves both prototypes: flags is in the 5th argument's
 * register before 5.19, the 4th's since. Without barrier_var(), clang (14 and 19) makes the pick
 * one load from ctx at a run-time offset, which every kernel's verifier refuses.
 */
SEC("kprobe/tcp_recvmsg")
int BPF_KPROBE(tcp_recvmsg_kprobe, struct sock *sk)
{
	long p4 = PT_REGS_PARM4(ctx), p5 = PT_REGS_PARM5(ctx);
	int flags;

	barrier_var(p4);
	barrier_var(p5);
	flags = targ_recvmsg_nonblock_arg ? p5 : p4;
	return remember_sock(flags & MSG_PEEK ? 0 : sk, RECEIVED);
}

SEC("kretprobe/tcp_recvmsg")
int BPF_KRETPROBE(tcp_recvmsg_kretprobe, int ret)
{
	return count_remembered(ctx, ret, RECEIVED);
}

/* sock_recv_length (6.3+), fired after every sock_recvmsg. */
/* tp_btf/sock_recv_length, either counter storage. */
static __always_inline int recv_length_btf(void *ctx, struct sock *sk, int ret, int flags, bool in_socket)
{
	if (ret <= 0 || (flags & MSG_PEEK) || !is_tcp_stream(sk, TRUSTED))
		return 0;
	return count_bytes(ctx, sk, ret, RECEIVED, TRUSTED, in_socket);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(sock_recv_btf, struct sock *sk, int ret, int flags)
{
	return recv_length_btf(ctx, sk, ret, flags, IN_FLOW_MAP);
}

SEC("tracepoint/sock/sock_recv_length")
int sock_recv_tp(struct trace_event_raw_sock_msg_length *ctx)
{
	struct sock *sk = (struct sock *)BPF_CORE_READ(ctx, sk);
	int ret = BPF_CORE_READ(ctx, ret);

	if (ret <= 0 || (BPF_CORE_READ(ctx, flags) & MSG_PEEK) || BPF_CORE_READ(ctx, protocol) != IPPROTO_TCP ||
	    !is_tcp_stream(sk, PROBED))
		return 0;
	return count_bytes(ctx, sk, ret, RECEIVED, PROBED, IN_FLOW_MAP);
}

/* --- sends: sock_send_length tracepoint (6.3+), fired after every sock_sendmsg --- */

/* tp_btf/sock_send_length, either counter storage. */
static __always_inline int send_length_btf(void *ctx, struct sock *sk, int ret, bool in_socket)
{
	if (ret <= 0 || !is_tcp_stream(sk, TRUSTED))
		return 0;
	return count_bytes(ctx, sk, ret, SENT, TRUSTED, in_socket);
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(sock_send_btf, struct sock *sk, int ret, int flags)
{
	return send_length_btf(ctx, sk, ret, IN_FLOW_MAP);
}

SEC("tracepoint/sock/sock_send_length")
int sock_send_tp(struct trace_event_raw_sock_msg_length *ctx)
{
	struct sock *sk = (struct sock *)BPF_CORE_READ(ctx, sk);
	int ret = BPF_CORE_READ(ctx, ret);

	if (ret <= 0 || BPF_CORE_READ(ctx, protocol) != IPPROTO_TCP || !is_tcp_stream(sk, PROBED))
		return 0;
	return count_bytes(ctx, sk, ret, SENT, PROBED, IN_FLOW_MAP);
}

/* --- opens (direction) and closes --- */

/* Established from SYN_SENT: it connected; from SYN_RECV: the new socket a listener accepted. */
static __always_inline void remember_direction(struct sock *sk, int oldstate)
{
	__u64 addr = (__u64)sk;
	__u32 dir = oldstate == TCP_SYN_SENT ? TCP_DIR_OUT : TCP_DIR_IN;

	if (oldstate == TCP_SYN_SENT || oldstate == TCP_SYN_RECV)
		bpf_map_update_elem(&tcp_sock_direction, &addr, &dir, BPF_ANY);
}

static __always_inline int state_changed(void *ctx, struct sock *sk, int oldstate, int newstate,
					 bool trusted, bool in_socket)
{
	struct tcp_flow_key key;

	if ((newstate != TCP_CLOSE && newstate != TCP_ESTABLISHED) || !flow_key(sk, &key, trusted))
		return 0;
	if (newstate == TCP_ESTABLISHED) {
		/* Without the direction label, only the exporter's own accepted connections. */
		if (targ_direction || (oldstate == TCP_SYN_RECV && own_port(&key)))
			remember_direction(sk, oldstate);
		return 0;
	}
	if (!targ_direction && own_port(&key)) {
		__u64 addr = (__u64)sk;

		bpf_map_delete_elem(&tcp_sock_direction, &addr);
	}
	if (in_socket) {
		struct tcp_sock_bytes *b = bpf_sk_storage_get(&tcp_sock_bytes, sk, 0, 0);

		if (b)
			move_to_flow(b, &key);
	}
	return notify_close(ctx, &key);
}

/* tp_btf/inet_sock_set_state, either counter storage. */
static __always_inline int state_btf(void *ctx, struct sock *sk, int oldstate, int newstate, bool in_socket)
{
	if ((newstate != TCP_CLOSE && newstate != TCP_ESTABLISHED) || !is_tcp_stream(sk, TRUSTED))
		return 0;
	return state_changed(ctx, sk, oldstate, newstate, TRUSTED, in_socket);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(inet_state_btf, struct sock *sk, int oldstate, int newstate)
{
	return state_btf(ctx, sk, oldstate, newstate, IN_FLOW_MAP);
}

SEC("tracepoint/sock/inet_sock_set_state")
int inet_state_tp(struct trace_event_raw_inet_sock_set_state *ctx)
{
	if (BPF_CORE_READ(ctx, protocol) != IPPROTO_TCP)
		return 0;
	return state_changed(ctx, (struct sock *)BPF_CORE_READ(ctx, skaddr), BPF_CORE_READ(ctx, oldstate),
			     BPF_CORE_READ(ctx, newstate), PROBED, IN_FLOW_MAP);
}

/* --- socket storage mode: the tracing programs above, counting in the socket's storage --- */

SEC("fexit/tcp_sendmsg")
int BPF_PROG(tcp_sendmsg_sk_fexit, struct sock *sk, struct msghdr *msg, size_t size, int ret)
{
	return count_bytes(ctx, sk, ret, SENT, TRUSTED, IN_SOCKET);
}

SEC("fexit/tcp_sendpage")
int BPF_PROG(tcp_sendpage_sk_fexit, struct sock *sk, struct page *page, int offset, size_t size,
	     int flags, int ret)
{
	return count_bytes(ctx, sk, ret, SENT, TRUSTED, IN_SOCKET);
}

SEC("fexit/tcp_recvmsg")
int BPF_PROG(tcp_recvmsg_sk_fexit, struct sock *sk, struct msghdr *msg, size_t len, int flags,
	     int *addr_len, int ret)
{
	return count_received(ctx, sk, flags, ret, IN_SOCKET);
}

SEC("fexit/tcp_recvmsg")
int BPF_PROG(tcp_recvmsg_noaddr_sk_fexit, struct sock *sk, struct msghdr *msg, size_t len, int flags,
	     int ret)
{
	return count_received(ctx, sk, flags, ret, IN_SOCKET);
}

SEC("fexit/tcp_recvmsg")
int BPF_PROG(tcp_recvmsg_nonblock_sk_fexit, struct sock *sk, struct msghdr *msg, size_t len,
	     int nonblock, int flags, int *addr_len, int ret)
{
	return count_received(ctx, sk, flags, ret, IN_SOCKET);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(sock_recv_sk_btf, struct sock *sk, int ret, int flags)
{
	return recv_length_btf(ctx, sk, ret, flags, IN_SOCKET);
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(sock_send_sk_btf, struct sock *sk, int ret, int flags)
{
	return send_length_btf(ctx, sk, ret, IN_SOCKET);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(inet_state_sk_btf, struct sock *sk, int oldstate, int newstate)
{
	return state_btf(ctx, sk, oldstate, newstate, IN_SOCKET);
}

/* The last bytes at the socket's destruction, and every socket's at each scrape. */

/*
 * A send that raced the close (it ran between the state tracepoint and the state's change) left
 * bytes the close did not move; the storage goes with the socket, so they move now.
 */
SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(tcp_destroy_btf, struct sock *sk)
{
	struct tcp_sock_bytes *b = bpf_sk_storage_get(&tcp_sock_bytes, sk, 0, 0);
	struct tcp_flow_key key;

	if (!b || (!b->sent && !b->received) || !flow_key(sk, &key, TRUSTED))
		return 0;
	move_to_flow(b, &key);
	return notify_close(ctx, &key);
}

/*
 * Run by user space before each read of tcp_flows (it reads the iterator's empty output): every
 * socket's bytes move to its flow's entry. A closed socket's entry is marked so the read takes it.
 */
SEC("iter/bpf_sk_storage_map")
int tcp_move_iter(struct bpf_iter__bpf_sk_storage_map *ctx)
{
	struct tcp_sock_bytes *b = ctx->value;
	struct sock *sk = ctx->sk;
	struct tcp_flow_bytes *v;
	struct tcp_flow_key key;

	if (!sk || !b || (!b->sent && !b->received) || !flow_key(sk, &key, TRUSTED))
		return 0;
	move_to_flow(b, &key);
	if (sk->__sk_common.skc_state == TCP_CLOSE) {
		v = bpf_map_lookup_elem(&tcp_flows, &key);
		if (v)
			v->closed = 1;
	}
	return 0;
}
