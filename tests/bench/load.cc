// Workload drivers for tests/bench/bench.py, in C++ so that the driver is not
// what limits the rate. Each mode prints one line of key=value pairs.
//
//   execflow_bench_load exec SECONDS WORKERS [ARG_BYTES]
//       WORKERS threads each fork+exec /bin/true back to back until SECONDS pass,
//       with a command line of about ARG_BYTES bytes (arguments of 100 bytes) if given.
//       -> execs=N seconds=S
//   execflow_bench_load tcp SECONDS WRITE_BYTES
//       one loopback IPv4 connection: a client thread write()s WRITE_BYTES at a
//       time until SECONDS pass, a server thread reads everything (256 KiB reads).
//       Time runs until the server has read the last byte. Both threads are
//       pinned and the server wakes per 64 KiB (SO_RCVLOWAT), to compare runs.
//       -> writes=N bytes=B seconds=S
//   execflow_bench_load tcp SECONDS WRITE_BYTES plain
//       the same as a chatty service does it: neither thread pinned, the server
//       reads as data arrives (SO_RCVLOWAT unset).
//   execflow_bench_load flows N
//       opens N loopback connections whose client end each sends 1 byte, so N
//       flows are live in execflow's kernel map; prints "ready flows=N ...",
//       waits for stdin to close, closes everything with RST (no TIME_WAIT left
//       to block the next run's ports) and prints "closed flows=N".
//   execflow_bench_load stats
//       turns on the kernel's BPF run-time stats (BPF_ENABLE_STATS), prints
//       "ready" and keeps them on until stdin closes.
//   execflow_bench_load tcpn WRITES WRITE_BYTES
//       the same with a fixed number of writes instead of a time.
//   execflow_bench_load empty
//       loads and attaches each program of tests/bench/empty.bpf.c (programs
//       that do nothing, on execflow's hooks) on its own, prints one line per
//       program "program=P hook=H id=N" or "program=P hook=H refused=ERROR",
//       then "ready", and keeps them attached until stdin closes.
//   execflow_bench_load tcpstorage
//       loads and attaches bpf/tcp.bpf.c's tp_btf send, receive and close programs in
//       socket storage mode (without its iterator, which some kernels refuse: the bytes
//       stay in the sockets' storage), prints "program=P hook=H id=N" per program (or
//       one "program=P hook=H refused=ERROR"), then "ready", and keeps them attached
//       until stdin closes: what the exporter's per-call programs cost in that mode.
//   execflow_bench_load object FILE PROGRAM
//       loads and attaches PROGRAM of the BPF object FILE alone (a variant of one of
//       execflow's programs that tests/bench/ablate.py built), consumes the records of its
//       ring buffers as the exporter does, prints "program=P hook=H id=N" (or
//       "program=P hook=H refused=ERROR" and exits 1), then "ready", and keeps it attached
//       until stdin closes.
//   execflow_bench_load proginfo ID...
//       per BPF program id: "id=N verified_insns=V xlated=X jited=J" from
//       BPF_OBJ_GET_INFO_BY_FD (verified_insns: 5.16+; bpftool 7.1 does not show it).
//   execflow_bench_load mapread PID MAP
//       finds the BPF map named MAP among the fds of process PID and prints
//       "ready"; then, for each line "time" on stdin, reads every entry the way
//       execflow's BpfMapReader does (BPF_MAP_LOOKUP_BATCH, 4096 entries first
//       and twice as many each call after) and prints "read_s=S entries=N":
//       what the kernel alone takes to hand that map to any reader.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <linux/bpf.h>
#include <pthread.h>
#include <sched.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <memory>
#include <vector>

#include "empty.skel.h"
#include "bpf/tcp.h"  // the types tcp.skel.h names
#include "tcp.skel.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "execflow_bench_load: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Fixed CPUs make runs comparable: where the two ends of a loopback
// connection run, for one, changes its rate several fold from run to run.
void PinTo(int cpu) {
  const int n = static_cast<int>(std::thread::hardware_concurrency());
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(n > 0 ? cpu % n : 0, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

int RunExec(double seconds, int workers, size_t arg_bytes) {
  // "true", then arguments of 99 bytes and their NUL up to about arg_bytes.
  std::vector<std::string> args = {"true"};
  for (size_t n = 5; n + 100 <= arg_bytes; n += 100) args.emplace_back(99, 'a' + args.size() % 26);
  std::atomic<long> execs{0};
  std::atomic<bool> failed{false};
  const auto t0 = Clock::now();
  const auto deadline = t0 + std::chrono::duration<double>(seconds);
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      PinTo(w);  // children inherit it
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      long n = 0;
      while (Clock::now() < deadline) {
        pid_t pid = fork();
        if (pid < 0) {
          failed = true;
          break;
        }
        if (pid == 0) {
          execve("/bin/true", argv.data(), environ);
          _exit(127);
        }
        int status = 0;
        if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
          failed = true;
          break;
        }
        ++n;
      }
      execs += n;
    });
  }
  for (auto& t : threads) t.join();
  const double dt = Seconds(t0, Clock::now());
  if (failed) {
    std::fprintf(stderr, "execflow_bench_load: fork/exec of /bin/true failed\n");
    return 1;
  }
  std::printf("execs=%ld seconds=%.6f\n", execs.load(), dt);
  return 0;
}

sockaddr_in Loopback(const char* addr, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, addr, &a.sin_addr);
  return a;
}

int Listen(const char* addr, int backlog, uint16_t* port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) Die("socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a = Loopback(addr, 0);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) < 0) Die("bind listener");
  if (listen(fd, backlog) < 0) Die("listen");
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return fd;
}

// Until `seconds` pass or `max_writes` writes are done, whichever comes first.
int RunTcp(double seconds, size_t write_bytes, unsigned long long max_writes = ~0ULL, bool plain = false) {
  if (!plain) PinTo(0);
  uint16_t port = 0;
  int lfd = Listen("127.0.0.1", 1, &port);
  std::atomic<unsigned long long> received{0};
  std::thread server([&] {
    if (!plain) PinTo(1);
    int fd = accept(lfd, nullptr, nullptr);
    if (fd < 0) Die("accept");
    // Wake the reader per 64 KiB, not per segment: the writer's send path is
    // what is measured, and a reader woken per write makes the rate jump.
    int lowat = 64 * 1024;
    if (!plain) setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof(lowat));
    std::vector<char> buf(256 * 1024);
    unsigned long long n = 0;
    for (;;) {
      ssize_t r = read(fd, buf.data(), buf.size());
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) Die("read");
      if (r == 0) break;
      n += static_cast<unsigned long long>(r);
    }
    received = n;
    close(fd);
  });
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) Die("socket");
  sockaddr_in a = Loopback("127.0.0.1", port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) < 0) Die("connect");
  std::vector<char> buf(write_bytes, 'x');
  unsigned long long writes = 0, bytes = 0;
  const auto t0 = Clock::now();
  const auto deadline = t0 + std::chrono::duration<double>(seconds);
  // Checking the clock every write would cost as much as a 64-byte write.
  while (writes < max_writes && Clock::now() < deadline) {
    for (int i = 0; i < 64 && writes < max_writes; ++i) {
      ssize_t w = write(fd, buf.data(), buf.size());
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) Die("write");
      ++writes;
      bytes += static_cast<unsigned long long>(w);
    }
  }
  shutdown(fd, SHUT_WR);
  server.join();
  const double dt = Seconds(t0, Clock::now());
  close(fd);
  close(lfd);
  if (received != bytes) {
    std::fprintf(stderr, "execflow_bench_load: sent %llu bytes, server read %llu\n", bytes,
                 received.load());
    return 1;
  }
  std::printf("writes=%llu bytes=%llu seconds=%.6f\n", writes, bytes, dt);
  return 0;
}

void WaitForStdinClose() {
  char buf[64];
  while (read(STDIN_FILENO, buf, sizeof(buf)) > 0) {
  }
}

void AbortiveClose(int fd) {
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  close(fd);
}

// One process's share of the flows: both ends of `n` connections.
void OpenFlows(long n, int source_base, std::vector<int>* fds) {
  // Each (source address, listener) pair has ~28k ephemeral ports
  // (ip_local_port_range); 8 x 4 pairs per process leave plenty.
  constexpr int kSources = 8, kListeners = 4, kBatch = 512;
  std::vector<int> listeners;
  std::vector<uint16_t> ports(kListeners);
  for (int i = 0; i < kListeners; ++i) listeners.push_back(Listen("127.0.0.1", 4096, &ports[i]));
  fds->reserve(2 * n + kListeners);
  const char one_byte = 'x';
  for (long done = 0; done < n;) {
    const long batch = std::min<long>(kBatch, n - done);
    for (long i = done; i < done + batch; ++i) {
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0) Die("socket");
      int yes = 1;
      // Pick the source port at connect(), per 4-tuple, not at bind() per address.
      setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &yes, sizeof(yes));
      char src[16];
      std::snprintf(src, sizeof(src), "127.0.%d.%d", 1 + source_base % 250,
                    2 + static_cast<int>(i % kSources));
      sockaddr_in s = Loopback(src, 0);
      if (bind(fd, reinterpret_cast<sockaddr*>(&s), sizeof(s)) < 0) Die("bind client");
      sockaddr_in d = Loopback("127.0.0.1", ports[(i / kSources) % kListeners]);
      if (connect(fd, reinterpret_cast<sockaddr*>(&d), sizeof(d)) < 0) Die("connect");
      if (write(fd, &one_byte, 1) != 1) Die("write");
      fds->push_back(fd);
    }
    for (long i = done; i < done + batch; ++i) {
      int fd = accept4(listeners[(i / kSources) % kListeners], nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) Die("accept");
      char c;
      recv(fd, &c, 1, MSG_DONTWAIT);
      fds->push_back(fd);
    }
    done += batch;
  }
  for (int fd : listeners) fds->push_back(fd);
}

// The flows are spread over child processes: RLIMIT_NOFILE's hard limit may
// be low (raising it needs CAP_SYS_RESOURCE) and each flow takes two fds.
int RunFlows(long n) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0) Die("getrlimit");
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  const long per_child = std::max<long>(
      1, std::min<long>(20000, (static_cast<long>(std::min<rlim_t>(rl.rlim_cur, 1 << 20)) - 64) / 2));
  int ready[2];
  if (pipe(ready) < 0) Die("pipe");
  std::vector<pid_t> children;
  for (long first = 0, k = 0; first < n; first += per_child, ++k) {
    const long count = std::min(per_child, n - first);
    pid_t pid = fork();
    if (pid < 0) Die("fork");
    if (pid == 0) {
      close(ready[0]);
      std::vector<int> fds;
      OpenFlows(count, static_cast<int>(k), &fds);
      char r = 'r';
      if (write(ready[1], &r, 1) != 1) _exit(1);
      // Everything stays open until our stdin (shared with the parent) closes.
      WaitForStdinClose();
      for (int fd : fds) AbortiveClose(fd);
      _exit(0);
    }
    children.push_back(pid);
  }
  close(ready[1]);
  size_t got = 0;
  char r;
  while (got < children.size() && read(ready[0], &r, 1) == 1) ++got;
  if (got < children.size()) {
    std::fprintf(stderr, "execflow_bench_load: %zu of %zu flow processes failed\n",
                 children.size() - got, children.size());
    for (pid_t pid : children) kill(pid, SIGKILL);
  } else {
    std::printf("ready flows=%ld processes=%zu\n", n, children.size());
    std::fflush(stdout);
  }
  int rc = got < children.size() ? 1 : 0;
  for (pid_t pid : children) {
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) rc = 1;
  }
  if (rc == 0) std::printf("closed flows=%ld\n", n);
  return rc;
}

int RunStats() {
  union bpf_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.enable_stats.type = BPF_STATS_RUN_TIME;
  // The stats stay on while this fd is open, so they end with this process.
  const long fd = syscall(__NR_bpf, BPF_ENABLE_STATS, &attr, sizeof(attr));
  if (fd < 0) Die("bpf(BPF_ENABLE_STATS)");
  std::printf("ready\n");
  std::fflush(stdout);
  WaitForStdinClose();
  close(static_cast<int>(fd));
  return 0;
}

// An fd of process `pid`'s BPF map `name`, from the map ids its fds' fdinfo give.
int OpenMapOf(pid_t pid, const std::string& name) {
  const std::string dir = "/proc/" + std::to_string(pid) + "/fdinfo";
  DIR* d = opendir(dir.c_str());
  if (!d) Die(("open " + dir).c_str());
  int found = -1;
  while (dirent* e = readdir(d)) {
    std::ifstream info(dir + "/" + e->d_name);
    for (std::string line; found < 0 && std::getline(info, line);) {
      if (line.rfind("map_id:", 0) != 0) continue;
      const int fd = bpf_map_get_fd_by_id(static_cast<__u32>(std::stoul(line.substr(7))));
      bpf_map_info m{};
      __u32 len = sizeof(m);
      if (fd >= 0 && bpf_obj_get_info_by_fd(fd, &m, &len) == 0 && name == m.name) {
        found = fd;
      } else if (fd >= 0) {
        close(fd);
      }
    }
  }
  closedir(d);
  return found;
}

int RunMapRead(pid_t pid, const std::string& name) {
  const int fd = OpenMapOf(pid, name);
  if (fd < 0) {
    std::fprintf(stderr, "execflow_bench_load: process %d holds no BPF map %s\n", pid, name.c_str());
    return 1;
  }
  bpf_map_info m{};
  __u32 len = sizeof(m);
  if (bpf_obj_get_info_by_fd(fd, &m, &len) != 0) Die("bpf_obj_get_info_by_fd");
  std::vector<uint8_t> keys, values;
  std::vector<uint8_t> in(std::max<__u32>(m.key_size, 8)), out(in.size());
  std::printf("ready\n");
  std::fflush(stdout);
  for (std::string line; std::getline(std::cin, line);) {
    if (line != "time") {
      std::fprintf(stderr, "execflow_bench_load: unknown command %s\n", line.c_str());
      return 2;
    }
    const auto t0 = Clock::now();
    size_t room = std::min<size_t>(std::max<__u32>(m.max_entries, 1), 4096), total = 0;
    keys.resize(room * m.key_size);
    values.resize(room * m.value_size);
    bool first = true;
    for (;;) {
      if (total == room) {
        room *= 2;
        keys.resize(room * m.key_size);
        values.resize(room * m.value_size);
      }
      __u32 count = static_cast<__u32>(room - total);
      const int ret = bpf_map_lookup_batch(fd, first ? nullptr : in.data(), out.data(),
                                           keys.data() + total * m.key_size,
                                           values.data() + total * m.value_size, &count, nullptr);
      const int err = ret < 0 ? errno : 0;
      if (err == ENOSPC && count == 0) {
        room *= 2;
        keys.resize(room * m.key_size);
        values.resize(room * m.value_size);
        continue;
      }
      total += count;
      if (err == ENOENT) break;
      if (err != 0 && err != ENOSPC) Die("bpf(BPF_MAP_LOOKUP_BATCH)");
      in.swap(out);
      first = false;
    }
    std::printf("read_s=%.9f entries=%zu\n", Seconds(t0, Clock::now()), total);
    std::fflush(stdout);
  }
  close(fd);
  return 0;
}

// Prints "ready" and, until stdin closes, consumes rb's records (if any) as the exporter does:
// polled every 10 ms.
int ReadyUntilStdinCloses(ring_buffer* rb) {
  std::atomic<bool> stop{false};
  std::thread consumer([&] {
    while (rb && !stop.load()) {
      ring_buffer__consume(rb);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  std::printf("ready\n");
  std::fflush(stdout);
  WaitForStdinClose();
  stop = true;
  consumer.join();
  return 0;
}

struct EmptyDeleter {
  void operator()(empty_bpf* s) const { empty_bpf::destroy(s); }
};

int RunEmpty() {
  libbpf_set_print([](libbpf_print_level, const char*, va_list) { return 0; });
  std::vector<std::unique_ptr<empty_bpf, EmptyDeleter>> held;
  std::unique_ptr<empty_bpf, EmptyDeleter> probe(empty_bpf::open());
  if (!probe) Die("open empty.bpf.o");
  std::vector<std::string> names;
  bpf_program* p;
  bpf_object__for_each_program(p, probe->obj) names.push_back(bpf_program__name(p));
  for (const std::string& name : names) {
    std::unique_ptr<empty_bpf, EmptyDeleter> s(empty_bpf::open());
    if (!s) Die("open empty.bpf.o");
    bpf_program* mine = nullptr;
    bpf_object__for_each_program(p, s->obj) {
      const bool it = name == bpf_program__name(p);
      bpf_program__set_autoload(p, it);
      if (it) mine = p;
    }
    const std::string hook = bpf_program__section_name(mine);
    int err = empty_bpf::load(s.get());
    if (!err) err = empty_bpf::attach(s.get());
    if (err) {
      std::printf("program=%s hook=%s refused=%s\n", name.c_str(), hook.c_str(),
                  std::strerror(-err));
      continue;
    }
    bpf_prog_info info{};
    __u32 len = sizeof(info);
    bpf_obj_get_info_by_fd(bpf_program__fd(mine), &info, &len);
    std::printf("program=%s hook=%s id=%u\n", name.c_str(), hook.c_str(), info.id);
    held.push_back(std::move(s));
  }
  // floor_event_btf's records, consumed as the exporter does.
  std::unique_ptr<ring_buffer, decltype(&ring_buffer__free)> rb(nullptr, ring_buffer__free);
  for (auto& s : held) {
    if (bpf_program__fd(s->progs.floor_event_btf) < 0) continue;
    rb.reset(ring_buffer__new(bpf_map__fd(s->maps.floor_events),
                              [](void*, void*, size_t) { return 0; }, nullptr, nullptr));
    if (!rb) Die("ring_buffer__new floor_events");
  }
  return ReadyUntilStdinCloses(rb.get());
}

int RunTcpStorage() {
  libbpf_set_print([](libbpf_print_level, const char*, va_list) { return 0; });
  std::unique_ptr<tcp_bpf, void (*)(tcp_bpf*)> s(tcp_bpf::open(), tcp_bpf::destroy);
  if (!s) Die("open tcp.bpf.o");
  const std::vector<bpf_program*> wanted{s->progs.sock_send_sk_btf, s->progs.sock_recv_sk_btf,
                                         s->progs.inet_state_sk_btf};
  bpf_program* p;
  bpf_object__for_each_program(p, s->obj) {
    bpf_program__set_autoload(p, std::find(wanted.begin(), wanted.end(), p) != wanted.end());
  }
  int err = tcp_bpf::load(s.get());
  if (!err) err = tcp_bpf::attach(s.get());
  if (err) {
    std::printf("program=sock_send_sk_btf hook=%s refused=%s\n", bpf_program__section_name(wanted[0]),
                std::strerror(-err));
  } else {
    for (bpf_program* w : wanted) {
      bpf_prog_info info{};
      __u32 len = sizeof(info);
      bpf_obj_get_info_by_fd(bpf_program__fd(w), &info, &len);
      std::printf("program=%s hook=%s id=%u\n", bpf_program__name(w), bpf_program__section_name(w), info.id);
    }
  }
  std::printf("ready\n");
  std::fflush(stdout);
  WaitForStdinClose();
  return 0;
}

// One program of a BPF object file (a variant tests/bench/ablate.py built), loaded and
// attached alone, its ring buffers' records consumed as the exporter does.
int RunObject(const char* path, const std::string& name) {
  std::unique_ptr<bpf_object, decltype(&bpf_object__close)> obj(bpf_object__open_file(path, nullptr),
                                                              bpf_object__close);
  if (!obj) Die("bpf_object__open_file");
  bpf_program* mine = nullptr;
  bpf_program* p;
  bpf_object__for_each_program(p, obj.get()) {
    const bool it = name == bpf_program__name(p);
    bpf_program__set_autoload(p, it);
    if (it) mine = p;
  }
  if (!mine) Die("no such program in the object");
  const std::string hook = bpf_program__section_name(mine);
  std::unique_ptr<bpf_link, decltype(&bpf_link__destroy)> link(nullptr, bpf_link__destroy);
  int err = bpf_object__load(obj.get());
  if (!err) {
    link.reset(bpf_program__attach(mine));
    err = link ? 0 : -errno;
  }
  if (err) {
    std::printf("program=%s hook=%s refused=%s\n", name.c_str(), hook.c_str(), std::strerror(-err));
    return 1;
  }
  std::unique_ptr<ring_buffer, decltype(&ring_buffer__free)> rb(nullptr, ring_buffer__free);
  bpf_map* m;
  bpf_object__for_each_map(m, obj.get()) {
    if (bpf_map__type(m) != BPF_MAP_TYPE_RINGBUF) continue;
    const auto ignore = [](void*, void*, size_t) { return 0; };
    if (!rb) rb.reset(ring_buffer__new(bpf_map__fd(m), ignore, nullptr, nullptr));
    else if (ring_buffer__add(rb.get(), bpf_map__fd(m), ignore, nullptr)) Die("ring_buffer__add");
    if (!rb) Die("ring_buffer__new");
  }
  bpf_prog_info info{};
  __u32 len = sizeof(info);
  bpf_obj_get_info_by_fd(bpf_program__fd(mine), &info, &len);
  std::printf("program=%s hook=%s id=%u\n", name.c_str(), hook.c_str(), info.id);
  return ReadyUntilStdinCloses(rb.get());
}

int RunProgInfo(int n, char** ids) {
  for (int i = 0; i < n; ++i) {
    const int fd = bpf_prog_get_fd_by_id(static_cast<__u32>(std::strtoul(ids[i], nullptr, 10)));
    if (fd < 0) Die("bpf_prog_get_fd_by_id");
    bpf_prog_info info{};
    __u32 len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) Die("bpf_obj_get_info_by_fd");
    std::printf("id=%u verified_insns=%u xlated=%u jited=%u\n", info.id, info.verified_insns,
                info.xlated_prog_len, info.jited_prog_len);
    close(fd);
  }
  return 0;
}

int Usage() {
  std::fprintf(stderr,
               "usage: execflow_bench_load exec SECONDS WORKERS [ARG_BYTES]\n"
               "       execflow_bench_load tcp SECONDS WRITE_BYTES [plain]\n"
               "       execflow_bench_load flows N\n"
               "       execflow_bench_load tcpn WRITES WRITE_BYTES\n"
               "       execflow_bench_load stats\n"
               "       execflow_bench_load empty\n"
               "       execflow_bench_load tcpstorage\n"
               "       execflow_bench_load object FILE PROGRAM\n"
               "       execflow_bench_load proginfo ID...\n"
               "       execflow_bench_load mapread PID MAP\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Usage();
  const std::string mode = argv[1];
  if (mode == "stats" && argc == 2) return RunStats();
  if (mode == "exec" && (argc == 4 || argc == 5)) {
    return RunExec(std::atof(argv[2]), std::atoi(argv[3]), argc == 5 ? std::strtoul(argv[4], nullptr, 10) : 0);
  }
  if (mode == "tcp" && (argc == 4 || (argc == 5 && std::string(argv[4]) == "plain"))) {
    return RunTcp(std::atof(argv[2]), static_cast<size_t>(std::atol(argv[3])), ~0ULL, argc == 5);
  }
  if (mode == "tcpn" && argc == 4) {
    return RunTcp(1e9, static_cast<size_t>(std::atol(argv[3])), std::strtoull(argv[2], nullptr, 10));
  }
  if (mode == "empty" && argc == 2) return RunEmpty();
  if (mode == "tcpstorage" && argc == 2) return RunTcpStorage();
  if (mode == "object" && argc == 4) return RunObject(argv[2], argv[3]);
  if (mode == "proginfo" && argc >= 3) return RunProgInfo(argc - 2, argv + 2);
  if (mode == "flows" && argc == 3) return RunFlows(std::atol(argv[2]));
  if (mode == "mapread" && argc == 4) return RunMapRead(static_cast<pid_t>(std::atol(argv[2])), argv[3]);
  return Usage();
}
