// Workloads with known exact answers for the kernel matrix (tests/vm/guest.py),
// one per command. Each prints key=value lines that say what it did; the
// guest script compares them with what execflow exported.
//
//   execflow_vm_workload exec N UID PROG [ARG...]
//       a child switches to UID and runs PROG N times, one after the other
//       -> execs=N
//   execflow_vm_workload enoent N UID
//       a child switches to UID and execs a missing file N times -> enoent=N
//   execflow_vm_workload flow ADDR BYTES
//       one loopback connection to ADDR sends BYTES; prints "open sport=S dport=D",
//       waits for a line on stdin, closes, prints "closed" once the peer saw EOF
//   execflow_vm_workload sendfile BYTES
//       sendfile() of a BYTES-long file over one IPv4 loopback connection, then
//       close -> "sport=S dport=D"
//   execflow_vm_workload churn N BYTES
//       N short IPv4 connections to one port, each sending BYTES -> "dport=D"
//   execflow_vm_workload rst
//       a blocking send into a peer that never reads; while the sender sleeps
//       for buffer space, the peer resets the connection, so the send returns
//       after its socket closed -> "sport=S dport=D sent=B" (B bytes accepted)
//   execflow_vm_workload inflight N BYTES
//       N IPv4 loopback connections to peers that do not read yet, each with a
//       thread in one blocking send of BYTES: N calls in flight at once, more
//       than a kretprobe follows. Then the peers read, the sends complete, and
//       each thread sends one more byte -> "dport=D" and, per connection,
//       "sport=S first=B" (B bytes accepted by the first send)
//   execflow_vm_workload blocked BYTES
//       two IPv4 loopback connections: on one a reader thread sleeps in recv()
//       with nothing to read, on the other a sender thread sleeps in a send()
//       of BYTES that its peer does not read yet. Prints "reader_sport=S
//       reader_dport=D sender_sport=S sender_dport=D" once both sleep inside
//       their calls, waits for a line on stdin, then sends BYTES to the reader
//       and lets the sender's peer read -> "received=R sent=S" (what the
//       reader received and what the blocked send accepted)
//   execflow_vm_workload raw DADDR BYTES
//       sends BYTES through a raw IPPROTO_TCP socket connected to DADDR
//       (not a TCP flow: nothing may be counted) -> "sent=B"
#include <fcntl.h>
#include <grp.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <atomic>
#include <fstream>
#include <iostream>
#include <iterator>
#include <thread>
#include <vector>
#include <string>

#include "tests/integration/tcp_peers.h"

namespace {

using execflow::Connect;
using execflow::SinkServer;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "execflow_vm_workload: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

// Runs body in a child that switched to uid (and gid = uid); the child's status.
template <typename F>
int AsUser(uint32_t uid, F body) {
  pid_t pid = fork();
  if (pid < 0) Die("fork");
  if (pid == 0) {
    if (setgroups(0, nullptr) != 0 || setgid(uid) != 0 || setuid(uid) != 0) _exit(100);
    _exit(body() ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int Exec(long n, uint32_t uid, char** argv) {
  int rc = AsUser(uid, [&] {
    for (long i = 0; i < n; ++i) {
      pid_t pid = fork();
      if (pid == 0) {
        execv(argv[0], argv);
        _exit(127);
      }
      int status = 0;
      if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        return false;
      }
    }
    return true;
  });
  if (rc != 0) Die("exec as uid " + std::to_string(uid) + " exited " + std::to_string(rc));
  std::printf("execs=%ld\n", n);
  return 0;
}

int Enoent(long n, uint32_t uid) {
  int rc = AsUser(uid, [&] {
    char path[] = "/nonexistent/execflow-vm", spaced[] = "a b", empty[] = "";
    char* argv[] = {path, spaced, empty, nullptr};  // what each failure's event must show
    for (long i = 0; i < n; ++i) {
      if (execv(path, argv) == 0 || errno != ENOENT) return false;
    }
    return true;
  });
  if (rc != 0) Die("enoent as uid " + std::to_string(uid) + " exited " + std::to_string(rc));
  std::printf("enoent=%ld\n", n);
  return 0;
}

void WaitReceived(const SinkServer& server, uint64_t bytes) {
  for (int i = 0; i < 30000 && server.received() < bytes; ++i) usleep(1000);
  if (server.received() != bytes) Die("peer received " + std::to_string(server.received()));
}

int Flow(const char* addr, uint64_t bytes) {
  SinkServer server(std::strchr(addr, ':') ? AF_INET6 : AF_INET, addr);
  uint16_t sport = 0;
  int fd = Connect(addr, server.port(), &sport);
  if (fd < 0 || !execflow::SendVarying(fd, bytes)) Die("send");
  WaitReceived(server, bytes);
  std::printf("open sport=%u dport=%u\n", sport, server.port());
  std::fflush(stdout);
  std::string line;
  std::getline(std::cin, line);
  close(fd);
  std::printf("closed\n");
  return 0;
}

// `bytes` sent to a peer that peeks at all of them (MSG_PEEK), then reads
// them: bytes received counts them once.
int Peek(uint64_t bytes) {
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_storage ss{};
  socklen_t len = SinkServer::Fill(&ss, "127.0.0.1", 0);
  if (bind(lfd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(lfd, 1) != 0) Die("listen");
  getsockname(lfd, reinterpret_cast<sockaddr*>(&ss), &len);
  const uint16_t dport = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  uint16_t sport = 0;
  int fd = Connect("127.0.0.1", dport, &sport);
  int peer = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd < 0 || peer < 0 || !execflow::SendVarying(fd, bytes)) Die("peek connection");
  std::vector<char> buf(bytes);
  ssize_t n = 0;
  for (int i = 0; i < 10000 && static_cast<uint64_t>(n) < bytes; ++i) {
    n = recv(peer, buf.data(), bytes, MSG_PEEK);
    if (n <= 0) Die("recv MSG_PEEK");
    if (static_cast<uint64_t>(n) < bytes) usleep(1000);
  }
  if (static_cast<uint64_t>(n) != bytes) Die("peeked " + std::to_string(n));
  for (uint64_t got = 0; got < bytes;) {
    n = recv(peer, buf.data(), bytes - got, 0);
    if (n <= 0) Die("recv");
    got += n;
  }
  std::printf("sport=%u dport=%u\n", dport, sport);  // the reading end's ports
  std::fflush(stdout);
  close(fd);
  close(peer);
  close(lfd);
  return 0;
}

int Sendfile(uint64_t bytes) {
  char path[] = "/tmp/execflow-vm-sendfile-XXXXXX";
  int file = mkstemp(path);
  if (file < 0) Die("mkstemp");
  unlink(path);
  std::vector<char> chunk(65536, 's');
  for (uint64_t w = 0; w < bytes;) {
    ssize_t n = write(file, chunk.data(), std::min<uint64_t>(chunk.size(), bytes - w));
    if (n <= 0) Die("write file");
    w += n;
  }
  SinkServer server;
  uint16_t sport = 0;
  int fd = Connect("127.0.0.1", server.port(), &sport);
  off_t off = 0;
  while (static_cast<uint64_t>(off) < bytes) {
    if (sendfile(fd, file, &off, bytes - off) <= 0) Die("sendfile");
  }
  WaitReceived(server, bytes);
  close(fd);
  close(file);
  std::printf("sport=%u dport=%u\n", sport, server.port());
  return 0;
}

int Churn(long n, uint64_t bytes) {
  SinkServer server;
  for (long i = 0; i < n; ++i) {
    int fd = Connect("127.0.0.1", server.port());
    if (fd < 0 || !execflow::SendVarying(fd, bytes)) Die("churn send");
    close(fd);
  }
  WaitReceived(server, n * bytes);
  std::printf("dport=%u\n", server.port());
  return 0;
}

int Rst() {
  uint16_t sport = 0, dport = 0;
  const ssize_t sent = execflow::SendInterruptedByReset(&sport, &dport);
  if (sent <= 0) Die("the reset send accepted nothing (" + std::to_string(sent) + ")");
  std::printf("sport=%u dport=%u sent=%zd\n", sport, dport, sent);
  return 0;
}

int Inflight(int n, size_t bytes) {
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_storage ss{};
  socklen_t len = SinkServer::Fill(&ss, "127.0.0.1", 0);
  if (bind(lfd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(lfd, n) != 0) Die("listen");
  getsockname(lfd, reinterpret_cast<sockaddr*>(&ss), &len);
  const uint16_t dport = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  std::vector<int> fds(n), peers(n);
  std::vector<uint16_t> sports(n);
  const int small = 4096;  // small buffers: each send blocks early
  for (int i = 0; i < n; ++i) {
    fds[i] = Connect("127.0.0.1", dport, &sports[i]);
    peers[i] = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fds[i] < 0 || peers[i] < 0) Die("connect");
    setsockopt(fds[i], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    setsockopt(peers[i], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  }
  std::vector<ssize_t> first(n, -1);
  std::atomic<int> done{0};
  std::vector<std::thread> senders;
  const std::vector<char> buf(bytes, 'i');
  std::atomic<bool> release{false};
  for (int i = 0; i < n; ++i) {
    senders.emplace_back([&, i] {
      first[i] = send(fds[i], buf.data(), buf.size(), 0);
      ++done;
      while (!release) usleep(1000);
      if (send(fds[i], "!", 1, 0) != 1) first[i] = -1;
    });
  }
  // All n sends are in flight once their queues stop growing with none done.
  std::vector<int> last(n, -1), queued(n, 0);
  for (int round = 0; round < 400; ++round) {
    usleep(50000);
    bool still = true;
    for (int i = 0; i < n; ++i) {
      ioctl(fds[i], TIOCOUTQ, &queued[i]);
      still = still && queued[i] == last[i] && queued[i] > 0;
      last[i] = queued[i];
    }
    if (still) break;
  }
  if (done != 0) Die("a send completed before all were in flight");
  std::vector<std::thread> readers;
  std::atomic<uint64_t> received{0};
  for (int i = 0; i < n; ++i) {
    readers.emplace_back([&, i] {
      char rb[65536];
      for (ssize_t r; (r = read(peers[i], rb, sizeof(rb))) > 0;) received += r;
    });
  }
  while (done < n) usleep(1000);
  release = true;
  for (auto& t : senders) t.join();
  for (int fd : fds) close(fd);
  for (auto& t : readers) t.join();
  for (int p : peers) close(p);
  close(lfd);
  std::printf("dport=%u\n", dport);
  for (int i = 0; i < n; ++i) {
    if (first[i] <= 0) Die("send " + std::to_string(i) + " failed");
    std::printf("sport=%u first=%zd\n", sports[i], first[i]);
  }
  return 0;
}

// Whether thread `tid` of this process sleeps inside system call `nr`.
bool SleepsIn(pid_t tid, long nr) {
  const std::string task = "/proc/self/task/" + std::to_string(tid);
  std::ifstream stat(task + "/stat");
  const std::string s((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const size_t paren = s.rfind(')');
  if (paren == std::string::npos || paren + 2 >= s.size() || s[paren + 2] != 'S') return false;
  std::ifstream syscall(task + "/syscall");  // "running" or the call's number and arguments
  long got = -1;
  return static_cast<bool>(syscall >> got) && got == nr;
}

// A pair of connected loopback sockets (client, server end); *sport and
// *dport get the client's ports.
std::pair<int, int> Pair(int lfd, uint16_t dport, uint16_t* sport) {
  int fd = Connect("127.0.0.1", dport, sport);
  int peer = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd < 0 || peer < 0) Die("connect");
  return {fd, peer};
}

int Blocked(uint64_t bytes) {
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_storage ss{};
  socklen_t len = SinkServer::Fill(&ss, "127.0.0.1", 0);
  if (bind(lfd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(lfd, 2) != 0) Die("listen");
  getsockname(lfd, reinterpret_cast<sockaddr*>(&ss), &len);
  const uint16_t dport = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  uint16_t reader_sport = 0, sender_sport = 0;
  auto [to_reader, reader_end] = Pair(lfd, dport, &reader_sport);
  auto [sender_end, sender_peer] = Pair(lfd, dport, &sender_sport);
  const int small = 4096;  // the sender blocks early
  setsockopt(sender_end, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
  setsockopt(sender_peer, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));

  std::atomic<pid_t> reader_tid{0}, sender_tid{0};
  uint64_t received = 0;
  ssize_t sent = -1;
  std::thread reader([&] {
    reader_tid = gettid();
    std::vector<char> buf(65536);
    while (received < bytes) {
      const ssize_t n = recv(reader_end, buf.data(), buf.size(), 0);
      if (n <= 0) break;
      received += n;
    }
  });
  const std::vector<char> out(bytes, 'b');
  std::thread sender([&] {
    sender_tid = gettid();
    sent = send(sender_end, out.data(), out.size(), 0);
  });
  // Both must be inside tcp_recvmsg and tcp_sendmsg, asleep, before the
  // caller scrapes: a kprobe mode remembers them from then on.
  bool asleep = false;
  for (int i = 0; i < 60000 && !asleep; ++i) {
    asleep = reader_tid && sender_tid && SleepsIn(reader_tid, SYS_recvfrom) && SleepsIn(sender_tid, SYS_sendto);
    if (!asleep) usleep(1000);
  }
  if (!asleep) Die("the reader and the sender did not both block");
  std::printf("reader_sport=%u reader_dport=%u sender_sport=%u sender_dport=%u\n", reader_sport, dport,
              sender_sport, dport);
  std::fflush(stdout);
  std::string line;
  std::getline(std::cin, line);
  if (!execflow::SendVarying(to_reader, bytes)) Die("send to the reader");
  std::vector<char> buf(65536);
  for (uint64_t got = 0; got < bytes;) {
    const ssize_t n = recv(sender_peer, buf.data(), buf.size(), 0);
    if (n <= 0) Die("read the sender's bytes");
    got += n;
  }
  reader.join();
  sender.join();
  for (int fd : {to_reader, reader_end, sender_end, sender_peer, lfd}) close(fd);
  std::printf("received=%llu sent=%zd\n", static_cast<unsigned long long>(received), sent);
  return 0;
}

int Raw(const char* daddr, uint64_t bytes) {
  const ssize_t n = execflow::SendRawTcp(daddr, bytes);
  if (n != static_cast<ssize_t>(bytes)) Die("raw send");
  std::printf("sent=%zd\n", n);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  const std::string cmd = argc > 1 ? argv[1] : "";
  auto num = [&](int i) { return std::strtoull(argv[i], nullptr, 10); };
  if (cmd == "exec" && argc >= 5) return Exec(num(2), num(3), argv + 4);
  if (cmd == "enoent" && argc == 4) return Enoent(num(2), num(3));
  if (cmd == "flow" && argc == 4) return Flow(argv[2], num(3));
  if (cmd == "sendfile" && argc == 3) return Sendfile(num(2));
  if (cmd == "peek" && argc == 3) return Peek(num(2));
  if (cmd == "churn" && argc == 4) return Churn(num(2), num(3));
  if (cmd == "rst" && argc == 2) return Rst();
  if (cmd == "blocked" && argc == 3) return Blocked(num(2));
  if (cmd == "raw" && argc == 4) return Raw(argv[2], num(3));
  if (cmd == "inflight" && argc == 4) return Inflight(static_cast<int>(num(2)), num(3));
  std::fprintf(stderr, "usage: execflow_vm_workload exec|enoent|flow|sendfile|peek|churn|rst|blocked|raw|inflight ...\n");
  return 2;
}
